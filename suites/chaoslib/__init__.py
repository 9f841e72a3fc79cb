"""Tests of chaos/ itself: every fault injects and always heals, on throwaway testbed containers."""
