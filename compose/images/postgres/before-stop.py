#!/usr/bin/env python3
"""Patroni `before_stop` hook: when Patroni stops the primary it leads, do the fast shutdown here and wait for it.

Why: in a graceful demote (switchover, `docker stop`) Patroni 4.0.7 signals the postmaster and then polls
`pg_controldata` once a second (`STOP_POLLING_INTERVAL = 1`); when the postmaster is still running after the
shutdown checkpoint (always with WAL archiving: the last segment is pushed first) it sleeps one more second
before it releases the leader key. Both waits are hard-coded; together they cost 1-2 s of every planned
failover. Patroni runs this hook right before it sends its own stop signal. If the postmaster is gone by then,
Patroni's signal finds no process and it releases the leader key at once: the same release, with the same
shutdown checkpoint location, that it makes after any clean stop. Nothing is released earlier than PostgreSQL's
own clean shutdown allows: its walsenders exit only after the connected replicas confirmed the last WAL.

Taken over: a stop while the container is being stopped (the entrypoint leaves a marker file: Patroni closes
its REST API before it stops PostgreSQL), or while Patroni's `/leader` answers 200 (switchover, restart), each
with the mode Patroni itself uses for them (fast). A primary that lost its leader key (isolated, or frozen and
resumed) is demoted by Patroni with an *immediate* stop: `/leader` answers 503 and this hook returns at once.
Bounded: after DPG_BEFORE_STOP_WAIT_S (default 3) it returns and Patroni's own logic continues (an archive
outage keeps the postmaster waiting on its archiver: Patroni's early release after the shutdown checkpoint then
still applies).
"""

import http.client
import os
import signal
import sys
import time

PGDATA = os.environ.get("PGDATA", "/data/pgdata")
PIDFILE = os.path.join(PGDATA, "postmaster.pid")
STOP_MARKER = os.environ.get("DPG_STOP_MARKER", "")  # set by the entrypoint; it writes the file on a stop signal
PATRONI_API = ("127.0.0.1", 8008)
POLL_S = 0.02


def log(message: str) -> None:
    print(f"dpg-before-stop: {message}", file=sys.stderr, flush=True)


def postmaster_pid() -> int | None:
    try:
        with open(PIDFILE) as fh:
            return int(fh.readline().strip())
    except (OSError, ValueError):
        return None


def why_take_over() -> str | None:
    """Why this stop is a graceful stop of the leader, or None when it is not (or not known to be)."""
    if STOP_MARKER and os.path.exists(STOP_MARKER):
        return "container stop requested"  # Patroni's shutdown; it has closed its REST API already
    conn = http.client.HTTPConnection(*PATRONI_API, timeout=0.5)
    try:
        conn.request("OPTIONS", "/leader")
        return "Patroni holds the leader key" if conn.getresponse().status == 200 else None
    except OSError:
        return None  # no answer in time: do not delay whatever Patroni is doing
    finally:
        conn.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return postmaster_pid() == pid


def main() -> int:
    pid = postmaster_pid()
    if pid is None or not alive(pid):
        return 0
    reason = why_take_over()
    if reason is None:
        return 0
    wait_s = float(os.environ.get("DPG_BEFORE_STOP_WAIT_S", "3"))
    started = time.monotonic()
    os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown, as Patroni would send it
    while alive(pid):
        if time.monotonic() - started > wait_s:
            log(f"postmaster {pid} still running after {wait_s:.1f} s ({reason}); handing back to Patroni")
            return 0
        time.sleep(POLL_S)
    log(f"fast shutdown of the leader's postmaster {pid} took {1000 * (time.monotonic() - started):.0f} ms ({reason})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
