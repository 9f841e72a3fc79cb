"""Clients (Jepsen's `client` role): workloads that talk to the cluster and record every attempt as ok/fail/info.

Probes, the cache-aside client, many-session helpers and load generators belong here. May import
`chaos.history` and `topology`; never faults, checkers, experiments or reports.
"""
