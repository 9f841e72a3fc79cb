"""The pgbouncer suite reuses the failover suite's cluster/experiment fixtures and its report hook."""
from suites.failover.conftest import cluster, experiment, pytest_runtest_makereport  # noqa: F401 - fixtures
