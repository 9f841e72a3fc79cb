"""The probe tables (writes, heartbeat) in a target: a schema of ours, created at the start of a run and dropped at its
end, so nothing of the run stays in a deployment this project did not create.

The embedded topology creates its `probe` schema once at bootstrap (compose/images/postgres/post_bootstrap.sh);
a target gets the same tables in `dpg_chaos_probe`, owned by the inventory's app login, readable by its readonly
login (the RO-path probes read them). `python -m chaos heal` drops one a killed run left behind.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from . import endpoints
from .inventory import current

COMMENT = "dpg-chaos probe tables of one run; dropped at its end (python -m chaos heal drops a leftover)"


def _ddl(schema: str, ro_user: str) -> list[sql.Composed]:
    s, ro = sql.Identifier(schema), sql.Identifier(ro_user)
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s),
        sql.SQL("COMMENT ON SCHEMA {} IS {}").format(s, sql.Literal(COMMENT)),
        # no unique constraint on purpose: the checker must be able to SEE duplicates
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.writes (value bigint NOT NULL, probe text NOT NULL, run_id text NOT NULL, "
            "server text NOT NULL DEFAULT host(inet_server_addr()) || ':' || inet_server_port(), "
            "timeline int NOT NULL DEFAULT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int, "
            "committed timestamptz NOT NULL DEFAULT clock_timestamp())"
        ).format(s),
        sql.SQL("CREATE INDEX IF NOT EXISTS writes_run ON {}.writes (run_id, value)").format(s),
        sql.SQL("CREATE TABLE IF NOT EXISTS {}.heartbeat (id int PRIMARY KEY, beat timestamptz NOT NULL)").format(s),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, ro),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(s, ro),
    ]


def ensure(schema: str) -> None:
    """Create the probe tables in `schema` (idempotent), through the RW entry point as the app login."""
    inv = current()
    with psycopg.connect(**endpoints.haproxy().conninfo(connect_timeout=5), autocommit=True) as conn:
        for stmt in _ddl(schema, inv.login("readonly").user if "readonly" in inv.logins else "readonly_user"):
            conn.execute(stmt)


def drop(schema: str) -> bool:
    """Drop the schema if it is ours (our comment on it); True if one was dropped."""
    with psycopg.connect(**endpoints.haproxy().conninfo(connect_timeout=5), autocommit=True) as conn:
        row = conn.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
        if row is None or row[0] != COMMENT:
            return False  # absent, or not made by us: never dropped
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        return True
