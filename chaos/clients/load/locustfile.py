"""The DPG workloads for Locust: pick one user class on the command line, the entry point by environment.

    DPG_LOAD_TARGET=pgbouncer locust -f chaos/clients/load/locustfile.py --headless -u 8 -r 8 --run-time 10s MixUser

Classes: PointReadUser, WriteUser, MixUser (80/20), VectorSearchUser (vector DB). Targets: direct (the
Patroni leader's port), haproxy, pgbouncer, traefik, citus. Run it through chaos/clients/load/locust_run.py (or
`python -m reports layers`), which bounds users and run time and collects the CSV statistics; the bench
tables come from chaos/clients/load/schema.py prepare().
"""

from chaos.clients.load.users import MixUser, PointReadUser, VectorSearchUser, WriteUser

__all__ = ["MixUser", "PointReadUser", "VectorSearchUser", "WriteUser"]
