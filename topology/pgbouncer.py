"""PgBouncer as the suite sees it: its configured limits (read from the file the container mounts) and its
admin console (SHOW POOLS / CLIENTS), so tests assert what *this* configuration promises."""

from __future__ import annotations

import configparser
import contextlib

import psycopg

from . import endpoints
from .errors import TopologyError
from .stacks import COMPOSE_DIR

CONFIG_FILE = COMPOSE_DIR / "config" / "pgbouncer" / "pgbouncer.ini"


def settings() -> dict[str, str]:
    """The [pgbouncer] section of the mounted pgbouncer.ini (comments and ; lines ignored)."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), comment_prefixes=(";", "#"))
    try:
        parser.read_string(CONFIG_FILE.read_text())
    except (OSError, configparser.Error) as exc:
        raise TopologyError(f"cannot read {CONFIG_FILE}: {exc}") from None
    return dict(parser["pgbouncer"])


def setting(name: str) -> int:
    try:
        return int(settings()[name])
    except KeyError:
        raise TopologyError(f"{CONFIG_FILE.name} has no {name} (the suite needs it explicit)") from None


@contextlib.contextmanager
def admin_console():
    """A connection to PgBouncer's admin database `pgbouncer` (simple query protocol only: ClientCursor)."""
    info = endpoints.pgbouncer().conninfo(connect_timeout=3, dbname="pgbouncer")
    with psycopg.connect(**info, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        yield conn


def show(what: str) -> list[dict]:
    """`SHOW <what>` on the admin console, as dicts (what: POOLS, CLIENTS, SERVERS, STATS, CONFIG...)."""
    if not what.replace("_", "").isalpha():
        raise ValueError(f"not a SHOW command: {what!r}")
    with admin_console() as conn, conn.cursor() as cur:
        cur.execute(f"SHOW {what}")
        cols = [d.name for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def pool(database: str = "distributed_postgres_cluster") -> dict:
    rows = [p for p in show("POOLS") if p["database"] == database]
    return rows[0] if rows else {}
