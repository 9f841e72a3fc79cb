"""Checkers (Jepsen's `checker` role): pure functions, history in, frozen verdict out (plus the census observer).

Set/split-brain/write-gap checks, the primary census, SLO bounds, failover phases and timelines belong here. May
import `chaos.history` and `topology`; never faults, clients, experiments or reports.
"""
