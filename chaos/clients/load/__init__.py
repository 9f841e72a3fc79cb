"""Load for the DPG entry points: Locust users (Python client view) and pgbench scripts (server-side ceiling).

`targets` names the entry points, `schema` creates the benchmark tables, `users`/`locustfile` are what Locust
runs, `locust_run` launches it headless and bounded, `pgbench` drives pgbench, `cpu` attributes CPU time to
the containers on the path. `reports/layers.py` composes them into the per-layer benchmark.
"""
