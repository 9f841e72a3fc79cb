"""Faults (nemeses), workload clients (probes) and checkers."""
