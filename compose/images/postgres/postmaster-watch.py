#!/usr/bin/env python3
"""Wake Patroni's HA loop the moment the node's postmaster exits (kill -9, OOM kill, crash).

Why: Patroni notices a dead postmaster only at its next HA cycle, up to loop_wait later (1 s, Patroni's
minimum): measured 0.29-1.14 s of a 0.8-1.6 s crash failover, the part that put its p95 over 1.5 s. This
watcher blocks on the postmaster's pidfd and, once the process is gone (exited and reaped by dumb-init, so
Patroni's own check sees it gone), asks the local Patroni to run its HA loop now. Patroni then decides exactly
what it decides at a scheduled cycle (primary_start_timeout: fail over or restart in place); nothing is
decided here, and a watcher that fails only costs the wait it was meant to save.

How Patroni is woken: `PATCH /config` with a body that changes nothing (it deletes a key that does not exist)
makes no DCS write and ends with `ha.wakeup()` (Patroni 4.0.7, api.py `do_PATCH_config`); the REST API is
Patroni's only way in from outside its process.
"""

import http.client
import json
import os
import select
import signal
import sys
import time

PGDATA = os.environ.get("PGDATA", "/data/pgdata")
PIDFILE = os.path.join(PGDATA, "postmaster.pid")
PATRONI_API = ("127.0.0.1", int(os.environ.get("DPG_PATRONI_API_PORT", "8008")))
NO_OP_PATCH = json.dumps({"dpg_postmaster_watch_wakeup": None})
POSTMASTER_NAMES = ("postgres", "postmaster")
PIDFILE_POLL_S = 0.1  # how often a missing or stale pid file is read again
REAP_WAIT_S = 1.0  # dumb-init reaps at once; bounded in case it does not
WAKE_TIMEOUT_S = 1.0


def log(message: str) -> None:
    print(f"dpg-postmaster-watch: {message}", file=sys.stderr, flush=True)


def pid_from_pidfile() -> int | None:
    try:
        with open(PIDFILE) as fh:
            return int(fh.readline().strip())
    except (OSError, ValueError):
        return None


def is_postmaster(pid: int) -> bool:
    """True while `pid` is a live (not zombie) postgres process: a stale pid file's number may be reused."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return False
    comm, _, rest = stat.partition("(")[2].rpartition(")")
    return comm in POSTMASTER_NAMES and rest.split()[0] != "Z"


def next_postmaster() -> int:
    """Wait (polling the pid file) for a running postmaster. The one that just exited cannot be it: a kill -9
    leaves postmaster.pid naming it, but it is reaped or a zombie by now, which `is_postmaster` rejects."""
    while True:
        pid = pid_from_pidfile()
        if pid is not None and is_postmaster(pid):
            return pid
        time.sleep(PIDFILE_POLL_S)


def wait_for_exit(pid: int) -> None:
    """Block until `pid` has exited and been reaped."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [])  # readable once the process has exited
    finally:
        os.close(fd)
    deadline = time.monotonic() + REAP_WAIT_S
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.002)


def wake_patroni() -> str:
    conn = http.client.HTTPConnection(*PATRONI_API, timeout=WAKE_TIMEOUT_S)
    try:
        conn.request("PATCH", "/config", body=NO_OP_PATCH, headers={"Content-Type": "application/json"})
        return f"HTTP {conn.getresponse().status}"
    except OSError as exc:
        return f"no answer ({exc.__class__.__name__})"  # Patroni starting or stopping: its own cycle decides
    finally:
        conn.close()


def watch_once() -> int:
    """Wait for the next postmaster, wait for it to exit, wake Patroni; returns the pid it watched."""
    pid = next_postmaster()
    wait_for_exit(pid)
    exited = time.monotonic()
    answer = wake_patroni()
    log(f"postmaster {pid} exited; woke Patroni's HA loop in {1000 * (time.monotonic() - exited):.0f} ms ({answer})")
    return pid


def main() -> int:
    for signum in (signal.SIGTERM, signal.SIGINT):  # dumb-init forwards the container's stop signal
        signal.signal(signum, lambda *_: sys.exit(0))
    while True:  # for the container's life: each pass blocks on one postmaster
        watch_once()


if __name__ == "__main__":
    sys.exit(main())
