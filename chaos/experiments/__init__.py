"""Experiments (Jepsen's generator/test role): steady state -> inject -> observe -> heal -> verify, with evidence.

Failover, DCS outage, DR drills and disasters, cluster settings held for a run belong here. May import every
chaos role and `topology`; never `reports` (which only reads what experiments wrote).
"""
