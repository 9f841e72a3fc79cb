"""Citus backups and a consistent restore with PostgreSQL's own tools (DR drill 10).

The upstream Citus image has no pgBackRest, but it has what PostgreSQL itself needs for a point-in-time restore:
WAL archiving (compose/citus.yml: archive_mode=on, archive_command copying into /backup/<node>/wal of the shared
volume `citus-backup`, only while that directory exists), `pg_basebackup`, and recovery to a named restore point.
`citus_create_restore_point(name)` writes the same named point on the coordinator and on every worker while
distributed commits are blocked, so restoring ALL nodes to that name gives a cluster-wide consistent state.

    with citus_backups(client) as b:             # arms archiving; on exit removes everything it wrote
        b.base_backup("citus-worker-1")          # pg_basebackup inside the node, into /backup/<node>/base
        b.restore_point("before-x")              # citus_create_restore_point on the coordinator
        b.archive_now()                          # pg_switch_wal on each node, wait until archived
        b.stop(); b.replace_data("before-x"); b.start(); b.wait_promoted()

How the data directory is swapped: the node's postgres is the container's main process, so it cannot be
replaced under a running server. The node is stopped (`docker stop`: SIGINT = fast shutdown, a clean
checkpoint), then ONE one-off container of the same image (user root, no network) mounts each stopped node's
data volume at /restore/<node> and the backup volume at /backup, empties the data directory, copies the base
backup in, appends restore_command / recovery_target_name / recovery_target_action='promote' to
postgresql.auto.conf, creates recovery.signal and gives everything back to `postgres` (by name: uid 999 in
the official image, Debian's uid in a local build). The node is then started and recovers by itself.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker
import docker.errors
import psycopg

from .citus import connect
from .errors import TopologyError
from .names import CITUS_NODES, container
from .ownership import creation_labels
from .timeouts import TIMEOUTS
from .waiting import wait_for

BACKUP_MOUNT = "/backup"  # the `citus-backup` volume in every Citus node (compose/citus.yml)
HELPER_NAME = "dpg-dr-citus-restore"
RECOVERY_SETTINGS = ("restore_command", "recovery_target_name", "recovery_target_action")
#: what PostgreSQL logs when recovery stops at a named restore point
STOPPED_AT = 'recovery stopping at restore point "{}"'
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")


class CitusBackupError(TopologyError):
    """A backup or restore step failed; the message names the node and carries the tail of its output/log."""


@dataclass(frozen=True)
class BaseBackup:
    node: str
    seconds: float
    bytes: int


@dataclass(frozen=True)
class Archived:
    node: str
    segment: str  # the segment holding everything written up to the switch
    seconds: float  # until it was in /backup/<node>/wal


def query(node: str, sql: str, params: tuple = ()):
    """One value from a node (None for a statement without rows), on a new session (nodes are stopped and
    started in between)."""
    with connect(node, statement_timeout_ms=30_000, connect_timeout=3) as conn:
        cur = conn.execute(sql, params)
        row = cur.fetchone() if cur.description is not None else None
        return None if row is None else row[0]


def timeline(node: str) -> int:
    """The timeline the node writes on now (it grows by one at each promotion)."""
    return int(query(node, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), 16)


class CitusBackups:
    """Base backups, WAL archive and restore of the Citus nodes, all on the shared `citus-backup` volume."""

    def __init__(self, client: docker.DockerClient, nodes: tuple[str, ...] = CITUS_NODES):
        self.client, self.nodes = client, nodes
        self._data_dir: dict[str, str] = {}

    # -- plumbing
    def container(self, node: str):
        try:
            return self.client.containers.get(container(node))
        except docker.errors.NotFound:
            raise CitusBackupError(f"{container(node)} does not exist: start the citus stack") from None

    def sh(self, node: str, cmd: str, *, user: str = "postgres", timeout: float = 60, check: bool = True) -> str:
        """A shell command inside a running node, bounded by coreutils `timeout` (the exec API has none)."""
        res = self.container(node).exec_run(["timeout", str(int(timeout)), "sh", "-c", cmd], user=user)
        out = (res.output or b"").decode(errors="replace")
        if check and res.exit_code != 0:
            tail = " | ".join(out.strip().splitlines()[-4:])
            raise CitusBackupError(f"`{cmd}` in {container(node)} failed (exit {res.exit_code}): {tail}")
        return out

    def _dir(self, node: str) -> str:
        return f"{BACKUP_MOUNT}/{node}"

    def _volume(self, node: str, destination: str) -> str:
        """Name of the volume mounted at `destination` in the node's container."""
        for m in self.container(node).attrs.get("Mounts", []):
            if m.get("Destination") == destination and m.get("Type") == "volume":
                return m["Name"]
        raise CitusBackupError(
            f"{container(node)} has no volume at {destination}: compose/citus.yml must mount "
            "the data directory and the `citus-backup` volume (see its header)"
        )

    def log_since(self, node: str, since: float) -> str:
        return self.container(node).logs(since=int(since), stdout=True, stderr=True).decode(errors="replace")

    # -- backups
    def arm(self) -> None:
        """A clean per-node directory on the backup volume, owned by postgres: archiving starts copying now."""
        for node in self.nodes:
            d = self._dir(node)
            self.sh(
                node, f"rm -rf {d} && mkdir -p {d}/wal && chown -R postgres:postgres {d} && chmod 700 {d}", user="root"
            )

    def base_backup(self, node: str) -> BaseBackup:
        """pg_basebackup of the node by itself (local socket, WAL streamed into the copy, fast checkpoint)."""
        d = self._dir(node)
        started = time.monotonic()
        self.sh(
            node,
            f"rm -rf {d}/base && pg_basebackup -D {d}/base -X stream -c fast --no-password -l dpg-dr-{node}",
            timeout=TIMEOUTS.backup,
        )
        size = int(self.sh(node, f"du -sb {d}/base | cut -f1").strip() or 0)
        return BaseBackup(node, round(time.monotonic() - started, 2), size)

    def restore_point(self, name: str) -> str:
        """citus_create_restore_point on the coordinator (it writes the point on every node); its LSN there."""
        if not _NAME.match(name):
            raise CitusBackupError(f"restore point name {name!r}: letters, digits, _ . - only (max 63)")
        return str(query(CITUS_NODES[0], "SELECT citus_create_restore_point(%s)::text", (name,)))

    def archive_now(self, nodes: tuple[str, ...] | None = None) -> list[Archived]:
        """Close each node's current WAL segment and wait until it is in the node's archive directory, so the
        archive holds everything written so far (the restore point and the writes after it included)."""
        out = []
        for node in nodes or self.nodes:
            started = time.monotonic()
            segment = query(node, "SELECT pg_walfile_name(pg_switch_wal())")
            path = f"{self._dir(node)}/wal/{segment}"
            wait_for(
                lambda node=node, path=path: self.container(node).exec_run(["test", "-f", path]).exit_code == 0,
                within=TIMEOUTS.backup,
                what=f"{node}: WAL segment {segment} archived to {path}",
                every=0.5,
            )
            out.append(Archived(node, segment, round(time.monotonic() - started, 2)))
        return out

    # -- restore
    def stop(self, nodes: tuple[str, ...] | None = None, *, grace: float = 10) -> dict[str, int]:
        """Record where each data directory is, then stop the nodes all at once (SIGINT = fast shutdown; SIGKILL
        after `grace` s). Returns each container's exit code (0 = clean shutdown, 137 = killed).

        All at once, because one at a time a node's Citus maintenance daemon, busy with the nodes already
        stopped, was seen to hold up that node's fast shutdown for 30 s and more. A kill is harmless here: the
        data directory is replaced by the base backup anyway."""
        nodes = nodes or self.nodes
        for node in nodes:
            self._data_dir[node] = str(query(node, "SHOW data_directory"))
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            list(pool.map(lambda n: self.container(n).stop(timeout=int(grace)), nodes))
        codes = {}
        for node in nodes:
            c = self.container(node)
            codes[node] = int(c.attrs["State"].get("ExitCode", -1))
        return codes

    def replace_data(self, target: str, nodes: tuple[str, ...] | None = None) -> float:
        """Each stopped node's data directory := its base backup + recovery to restore point `target`.
        Returns the seconds the one-off container took."""
        nodes = nodes or self.nodes
        if not _NAME.match(target):
            raise CitusBackupError(f"restore point name {target!r}: letters, digits, _ . - only (max 63)")
        for node in nodes:
            if self._running(node):
                raise CitusBackupError(f"{container(node)} is running: stop it before replacing its data")
        volumes = {self._volume(nodes[0], BACKUP_MOUNT): {"bind": BACKUP_MOUNT, "mode": "rw"}}
        script = ["set -eu"]
        for node in nodes:
            data_dir = self._data_dir.get(node) or "/var/lib/postgresql/data"
            volumes[self._volume(node, data_dir)] = {"bind": f"/restore/{node}", "mode": "rw"}
            d, base, wal = f"/restore/{node}", f"{self._dir(node)}/base", f"{self._dir(node)}/wal"
            settings = [
                f"restore_command = 'cp {wal}/%f %p'",
                f"recovery_target_name = '{target}'",
                "recovery_target_action = 'promote'",
            ]
            script += [
                f"test -s {base}/PG_VERSION || {{ echo 'no base backup of {node}'; exit 3; }}",
                f"find {d} -mindepth 1 -delete",
                f"cp -a {base}/. {d}/",
                "printf '%s\\n' " + " ".join(shlex.quote(s) for s in settings) + f" >> {d}/postgresql.auto.conf",
                f"touch {d}/recovery.signal",
                f"chown -R postgres:postgres {d}",
                f"chmod 700 {d}",
            ]
        started = time.monotonic()
        code, out = self._run_helper("\n".join(script), volumes, timeout=TIMEOUTS.restore)
        if code != 0:
            raise CitusBackupError(
                f"replacing the data directories of {', '.join(nodes)} failed (exit {code}): "
                + " | ".join(out.strip().splitlines()[-4:])
            )
        return round(time.monotonic() - started, 2)

    def start(self, nodes: tuple[str, ...] | None = None) -> None:
        for node in nodes or self.nodes:
            self.container(node).start()

    def wait_promoted(self, nodes: tuple[str, ...] | None = None, *, within: float | None = None) -> dict[str, float]:
        """Wait until every node finished recovery and was promoted; a node whose postgres exited (e.g.
        'recovery ended before configured recovery target was reached') fails at once with its log."""
        nodes = nodes or self.nodes
        budget = within or TIMEOUTS.restore
        started = time.monotonic()
        done: dict[str, float] = {}
        last: dict[str, str] = {}
        while time.monotonic() - started < budget:
            for node in nodes:
                if node in done:
                    continue
                c = self.container(node)
                c.reload()
                if c.status == "exited":
                    log = c.logs(tail=15).decode(errors="replace")
                    raise CitusBackupError(
                        f"{container(node)} stopped during recovery (exit "
                        f"{c.attrs['State'].get('ExitCode')}): " + " | ".join(log.strip().splitlines()[-6:])
                    )
                try:
                    if query(node, "SELECT NOT pg_is_in_recovery()"):
                        done[node] = round(time.monotonic() - started, 2)
                    else:
                        last[node] = "in recovery"
                except psycopg.Error as exc:
                    last[node] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if len(done) == len(nodes):
                return done
            time.sleep(0.5)
        raise CitusBackupError(f"not promoted within {budget:.0f}s: {last}")

    def tidy(self, nodes: tuple[str, ...] | None = None) -> None:
        """Take the recovery settings out of postgresql.auto.conf again (recovery.signal is gone already)."""
        for node in nodes or self.nodes:
            with connect(node, connect_timeout=3) as conn:
                for name in RECOVERY_SETTINGS:
                    conn.execute(f"ALTER SYSTEM RESET {name}")
                conn.execute("SELECT pg_reload_conf()")

    # -- cleanup
    def _run_helper(self, script: str, volumes: dict, *, timeout: float) -> tuple[int, str]:
        """`script` as root in a one-off container of the nodes' image (no network, labelled as ours), always
        removed afterwards; its exit code and output."""
        self._remove_helper()
        helper = self.client.containers.create(
            self.container(self.nodes[0]).attrs["Image"],
            entrypoint=["sh", "-c"],
            command=[script],
            user="root",
            name=HELPER_NAME,
            network_mode="none",
            volumes=volumes,
            labels={**creation_labels("citus"), "io.dpg-chaos.role": "dr-citus-restore"},
        )
        try:
            helper.start()
            code = helper.wait(timeout=timeout).get("StatusCode", -1)
            return code, helper.logs().decode(errors="replace")
        finally:
            self._remove_helper()

    def _remove_helper(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(HELPER_NAME).remove(force=True, v=True)

    def cleanup(self) -> None:
        """Remove the base backups and archives (archiving stops copying) and the one-off container.
        Idempotent; works whether the nodes run or not."""
        self._remove_helper()
        dirs = " ".join(self._dir(n) for n in self.nodes)
        running = [n for n in self.nodes if self._running(n)]
        if running:
            self.sh(running[0], f"rm -rf {dirs}", user="root", timeout=120)
            return
        self._run_helper(
            f"rm -rf {dirs}",
            {self._volume(self.nodes[0], BACKUP_MOUNT): {"bind": BACKUP_MOUNT, "mode": "rw"}},
            timeout=120,
        )

    def leftovers(self) -> list[str]:
        """What of the drill is still there (should be nothing after cleanup)."""
        found = []
        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(HELPER_NAME)
            found.append(f"container {HELPER_NAME}")
        running = [n for n in self.nodes if self._running(n)]
        if running:
            out = self.sh(running[0], f"ls -A {BACKUP_MOUNT}", user="root", check=False).split()
            found += [f"{BACKUP_MOUNT}/{e}" for e in out]
        return found

    def _running(self, node: str) -> bool:
        try:
            c = self.container(node)
        except CitusBackupError:
            return False
        c.reload()
        return c.status == "running"


@contextlib.contextmanager
def citus_backups(client: docker.DockerClient, nodes: tuple[str, ...] = CITUS_NODES) -> Iterator[CitusBackups]:
    """Archiving armed for the nodes while inside; every backup, archive and helper container removed on exit,
    whatever happened."""
    b = CitusBackups(client, nodes)
    try:
        b.arm()
        yield b
    finally:
        b.cleanup()
