"""The pgbouncer suite reuses the failover suite's cluster/experiment fixtures and its report hook."""

from suites.failover.conftest import cluster, experiment  # noqa: F401 - fixtures
