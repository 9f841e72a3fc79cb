"""pgBackRest plumbing: the repository host of the Patroni stack and throwaway restores from it.

The repository lives in its own container (`dpg-pgbackrest`, volume `pgbackrest-repo`) and talks to the Patroni
nodes over pgBackRest's TLS protocol (see compose/images/postgres/pgbackrest_conf.py for why). Backups run on
the repository host, which finds the primary among pg1..pg3 by itself; every node archives WAL to it.

    repo = Repository(client)
    repo.check(); label = repo.backup("full"); repo.verify().ok
    with repo.scratch(target=("name", "before_drop")) as s:   # throwaway container, archive off
        s.sql("SELECT count(*) FROM t")
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker
import docker.errors

from .docker_env import ip_prefix
from .errors import TopologyError
from .names import DB_NAME, DB_PASSWORD, DB_USER, NETWORK, container
from .ownership import creation_labels
from .timeouts import TIMEOUTS
from .waiting import wait_for

REPO_SERVICE = "pgbackrest"
STANZA = "dpg"
IMAGE = "dpg/postgres:latest"
SCRATCH_NAME = "dpg-dr-scratch"
SCRATCH_HOST = "dr-scratch"  # named in the image's TLS server certificate
SCRATCH_IP_SUFFIX = 41  # fixed, outside every compose file's addresses (a dynamic one could collide)
PGDATA = "/data/pgdata"
REPO_PATH = "/var/lib/pgbackrest"
WAL_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(?:-[0-9a-f]{40})?(?:\.\w+)?$")


class BackupError(TopologyError):
    """A pgBackRest command failed; the message carries its exit code and the last lines it printed."""

    def __init__(self, what: str, code: int, output: str):
        self.code, self.output = code, output
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-4:])
        super().__init__(f"{what} failed (exit {code}): {tail}")


@dataclass(frozen=True)
class Result:
    command: str
    code: int
    output: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass(frozen=True)
class Backup:
    label: str
    type: str  # full | diff | incr
    started: float  # epoch
    stopped: float
    wal_start: str
    wal_stop: str
    size: int  # database size in bytes
    repo_size: int  # bytes in the repository (compressed)

    @classmethod
    def from_info(cls, b: dict) -> Backup:
        return cls(
            b["label"],
            b["type"],
            b["timestamp"]["start"],
            b["timestamp"]["stop"],
            b["archive"]["start"],
            b["archive"]["stop"],
            b["info"]["size"],
            b["info"]["repository"]["delta"],
        )


@dataclass
class Verify:
    ok: bool
    output: str
    errors: list[str] = field(default_factory=list)


def _exec(c, cmd: str, *, timeout: float, user: str = "postgres") -> tuple[int, str]:
    """Run a shell command in a container, bounded by coreutils `timeout` (the Docker API has no exec timeout)."""
    res = c.exec_run(["timeout", str(int(timeout)), "sh", "-c", cmd], user=user, demux=False)
    return res.exit_code, (res.output or b"").decode(errors="replace")


def _timed(c, cmd: str, *, timeout: float, check: bool, where: str = "") -> Result:
    """`_exec` with its duration; with `check`, a non-zero exit raises BackupError naming the command."""
    started = time.monotonic()
    code, out = _exec(c, cmd, timeout=timeout)
    result = Result(cmd, code, out, time.monotonic() - started)
    if check and code != 0:
        raise BackupError(f"`{cmd}`{where}", code, out)
    return result


class Repository:
    """The pgBackRest repository host of the Patroni stack."""

    def __init__(self, client: docker.DockerClient, stanza: str = STANZA):
        self.client, self.stanza = client, stanza

    @property
    def container(self):
        try:
            return self.client.containers.get(container(REPO_SERVICE))
        except docker.errors.NotFound:
            raise TopologyError(
                f"{container(REPO_SERVICE)} is not running: start the patroni stack (`python -m topology up patroni`)"
            ) from None

    def run(self, *args: str, check: bool = True, timeout: float | None = None) -> Result:
        """`pgbackrest --stanza=<stanza> <args>` on the repository host."""
        cmd = "pgbackrest " + shlex.join([f"--stanza={self.stanza}", *args])
        return _timed(self.container, cmd, timeout=timeout or TIMEOUTS.backup, check=check)

    # -- state
    def info(self) -> dict:
        out = self.run("info", "--output=json", "--log-level-console=off").output
        data = json.loads(out)
        return next((s for s in data if s.get("name") == self.stanza), {})

    def backups(self) -> list[Backup]:
        return [Backup.from_info(b) for b in self.info().get("backup", [])]

    def info_text(self) -> str:
        return self.run("info", "--log-level-console=off", check=False).output

    def status(self) -> tuple[int, str]:
        """pgBackRest's own stanza status code (0 = ok) and message."""
        st = self.info().get("status", {})
        return st.get("code", -1), st.get("message", "no status")

    def wait_ready(self, within: float | None = None) -> None:
        """The stanza exists (the repo host creates it once the cluster has a primary) and `check` passes."""
        wait_for(
            lambda: self.run("check", timeout=60).ok,
            within=within or TIMEOUTS.backup,
            what=f"pgBackRest stanza {self.stanza} created and `check` passing",
            every=2,
        )

    # -- operations
    def check(self) -> Result:
        """pgBackRest `check`: the stanza, the repository and that WAL actually arrives in the archive."""
        return self.run("check")

    def backup(self, kind: str = "full", *options: str, check: bool = True, timeout: float | None = None) -> Result:
        """One backup (options e.g. "--process-max=1"); expire runs after it (retention)."""
        if kind not in ("full", "diff", "incr"):
            raise TopologyError(f"backup type {kind!r}: expected full, diff or incr")
        return self.run(f"--type={kind}", *options, "backup", check=check, timeout=timeout)

    def backup_running(self) -> bool:
        return bool(self.info().get("status", {}).get("lock", {}).get("backup", {}).get("held"))

    def verify(self, *, set_label: str | None = None) -> Verify:
        """pgBackRest `verify` (checksums of every backup file and archived WAL); never raises on a finding."""
        args = ["verify", "--verbose", "--log-level-console=info"] + ([f"--set={set_label}"] if set_label else [])
        r = self.run(*args, check=False)
        errors = [line.strip() for line in r.output.splitlines() if re.search(r"ERROR|WARN", line)]
        return Verify(r.ok and not _verify_findings(r.output), r.output, errors)

    def archived_segments(self, timeline: int) -> list[str]:
        """Names (24 hex digits) of the WAL segments of one timeline present in the archive."""
        archive_id = self.info()["archive"][-1]["id"]
        r = self.run("repo-ls", "--recurse", f"archive/{self.stanza}/{archive_id}", "--log-level-console=off")
        names = {
            m.group(0)[:24]
            for m in (WAL_NAME.match(p.rsplit("/", 1)[-1]) for p in r.output.split())
            if m and int(m.group(1), 16) == timeline
        }
        return sorted(names)

    def backup_files(self, label: str) -> list[tuple[str, int]]:
        """(path inside the repository volume, size) of one backup's data files, largest first."""
        code, out = _exec(
            self.container,
            f"find {REPO_PATH}/backup/{self.stanza}/{label}/pg_data -type f -printf '%s %p\\n' | sort -rn | head -20",
            timeout=30,
        )
        if code != 0:
            raise TopologyError(f"cannot list files of backup {label}: {out.strip()[:200]}")
        return [(p, int(s)) for s, p in (line.split(" ", 1) for line in out.strip().splitlines())]

    @contextlib.contextmanager
    def corrupted(self, path: str, *, offset: int = 64, length: int = 16) -> Iterator[str]:
        """Flip `length` bytes of one repository file; the original bytes are put back on exit, whatever happens."""
        c = self.container
        original = _read_bytes(c, path, offset, length)
        flipped = bytes(b ^ 0xFF for b in original)
        _write_bytes(c, path, offset, flipped)
        try:
            yield path
        finally:
            _write_bytes(c, path, offset, original)

    # -- restores
    @contextlib.contextmanager
    def scratch(
        self, *, target: tuple[str, str] | None = None, set_label: str | None = None, keep: bool = False
    ) -> Iterator[ScratchRestore]:
        """A throwaway container restored from the repository, archive off, started and promoted.

        target: None (end of the archive), ("name", restore_point), ("time", "2026-...+00"), ("immediate", "")."""
        s = ScratchRestore(self, target=target, set_label=set_label)
        try:
            s.create()
            yield s
        finally:
            if not keep:
                s.remove()


ARCHIVER_SQL = "SELECT row_to_json(a)::text FROM pg_stat_archiver a"
#: bytes per WAL segment of the cluster asked (initdb --wal-segsize; the Patroni cluster's is DPG_WAL_SEGSIZE_MB)
SEGMENT_BYTES_SQL = "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'"


def segment_number(name: str, segment_bytes: int) -> int:
    """The segment number of a WAL segment name (its position in the WAL, whatever the timeline).

    The name's middle 8 hex digits count 4 GiB 'logs', the last 8 the segment within one."""
    return int(name[8:16], 16) * (0x100000000 // segment_bytes) + int(name[16:24], 16)


def segment_range(first: str, last: str, segment_bytes: int) -> list[str]:
    """Every WAL segment name from `first` to `last` on first's timeline."""
    per_log = 0x100000000 // segment_bytes
    return [
        f"{first[:8]}{n // per_log:08X}{n % per_log:08X}"
        for n in range(segment_number(first, segment_bytes), segment_number(last, segment_bytes) + 1)
    ]


def _verify_findings(output: str) -> bool:
    """True when `verify` reported invalid/missing files (it can exit 0 and still list them in its summary)."""
    for m in re.finditer(r"(checksum invalid|size invalid|missing|other|invalid)[:\s]+(\d+)", output, re.I):
        if int(m.group(2)) > 0:
            return True
    return bool(re.search(r"\bERROR\b", output))


def _read_bytes(c, path: str, offset: int, length: int) -> bytes:
    code, out = _exec(c, f"od -An -v -tx1 -j {offset} -N {length} {shlex.quote(path)}", timeout=30)
    if code != 0:
        raise TopologyError(f"cannot read {path}: {out.strip()[:200]}")
    data = bytes.fromhex("".join(out.split()))
    if len(data) != length:
        raise TopologyError(f"{path} is shorter than {offset + length} bytes")
    return data


def _write_bytes(c, path: str, offset: int, data: bytes) -> None:
    escaped = "".join(f"\\{b:03o}" for b in data)
    code, out = _exec(
        c, f"printf '{escaped}' | dd of={shlex.quote(path)} bs=1 seek={offset} conv=notrunc status=none", timeout=30
    )
    if code != 0:
        raise TopologyError(f"cannot write {path}: {out.strip()[:200]}")


class ScratchRestore:
    """One restore of the stanza into a throwaway container (`dpg-dr-scratch`), checked and then removed."""

    def __init__(self, repo: Repository, *, target: tuple[str, str] | None, set_label: str | None):
        self.repo, self.target, self.set_label = repo, target, set_label
        self.c = None
        self.restore_result: Result | None = None

    def _args(self) -> list[str]:
        args = [f"--stanza={self.repo.stanza}", f"--pg1-path={PGDATA}", "--archive-mode=off"]
        if self.set_label:
            args.append(f"--set={self.set_label}")
        if self.target:
            kind, value = self.target
            args.append(f"--type={kind}")
            if kind != "immediate":
                args += [f"--target={value}", "--target-action=promote"]
            else:
                args.append("--target-action=promote")
        return args

    def create(self) -> None:
        client = self.repo.client
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(SCRATCH_NAME).remove(force=True)  # a leftover of an interrupted run
        networking = client.api.create_networking_config(
            {
                NETWORK: client.api.create_endpoint_config(
                    ipv4_address=f"{ip_prefix()}.{SCRATCH_IP_SUFFIX}", aliases=[SCRATCH_HOST]
                )
            }
        )
        cid = client.api.create_container(
            IMAGE,
            command=["sleep", "infinity"],
            name=SCRATCH_NAME,
            hostname=SCRATCH_HOST,
            labels={**creation_labels("patroni"), "io.dpg-chaos.role": "dr-scratch"},
            host_config=client.api.create_host_config(mem_limit="384m", shm_size=128 * 1024 * 1024),
            networking_config=networking,
        )["Id"]
        client.api.start(cid)
        self.c = client.containers.get(cid)
        self.sh("dpg-pgbackrest-conf client")

    def sh(self, cmd: str, *, check: bool = True, timeout: float | None = None) -> Result:
        return _timed(self.c, cmd, timeout=timeout or TIMEOUTS.restore, check=check, where=f" in {SCRATCH_NAME}")

    def restore(self, *, check: bool = True) -> Result:
        """pgBackRest restore into the scratch data directory (archive_mode off in the restored cluster)."""
        self.restore_result = self.sh("pgbackrest " + shlex.join(self._args()) + " restore", check=check)
        return self.restore_result

    def start(self) -> float:
        """Start PostgreSQL on the restored data and wait until recovery ended (promoted); returns the seconds."""
        started = time.monotonic()
        # Patroni's postgresql.conf came with the backup: keep it, but never archive and listen locally only
        self.sh(
            f"pg_ctl -D {PGDATA} -l /tmp/pg.log -w -t {int(TIMEOUTS.restore)} -o "
            "\"-c listen_addresses='' -c archive_mode=off -c hot_standby=on -c port=5432\" start"
        )
        deadline = started + TIMEOUTS.restore
        while time.monotonic() < deadline:  # bounded; a server that died in recovery fails at once, with its log
            if self.sh(f"pg_ctl -D {PGDATA} status", check=False).code != 0:
                raise BackupError("PostgreSQL on the scratch restore stopped during recovery", 1, self.log())
            if (
                self.sh("psql -X -At -d postgres -c 'SELECT NOT pg_is_in_recovery()'", check=False).output.strip()
                == "t"
            ):
                return time.monotonic() - started
            time.sleep(1)
        raise BackupError(f"scratch restore still recovering after {TIMEOUTS.restore:.0f}s", 1, self.log())

    def sql(self, query: str, *, db: str = DB_NAME) -> str:
        """One query through psql on the local socket; unaligned, tuples only."""
        return self.sh(f"psql -X -v ON_ERROR_STOP=1 -At -d {db} -c {shlex.quote(query)}", timeout=120).output.strip()

    def dump_into(self, table: str, *, host: str = "haproxy", port: int = 5000) -> Result:
        """Copy one table from the restored copy into the live cluster (pg_dump | psql through HAProxy)."""
        inner = (
            f"set -o pipefail; pg_dump --no-owner --no-privileges -t {shlex.quote(table)} {DB_NAME} | "
            f"PGPASSWORD={shlex.quote(DB_PASSWORD)} psql -X -q -v ON_ERROR_STOP=1 -h {host} -p {port} "
            f"-U {DB_USER} -d {DB_NAME}"
        )
        return self.sh(f"bash -c {shlex.quote(inner)}", timeout=300)

    def log(self) -> str:
        return self.sh("tail -n 60 /tmp/pg.log", check=False).output

    def amcheck(self) -> Result:
        """pg_amcheck over every database: heap and B-tree index structure (with heapallindexed)."""
        return self.sh(f"pg_amcheck --install-missing --heapallindexed -d {DB_NAME} -d postgres 2>&1", check=False)

    def stop(self) -> None:
        self.sh(f"pg_ctl -D {PGDATA} -m fast -w stop", check=False)

    def checksums(self) -> Result:
        """pg_checksums --check on the stopped cluster: every data page's checksum."""
        return self.sh(f"pg_checksums --check -D {PGDATA}", check=False)

    def remove(self) -> None:
        if self.c is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.c.remove(force=True, v=True)
            self.c = None


def status_text(client: docker.DockerClient) -> str:
    """`pgbackrest info` of the stanza, for `python -m topology backup-info` and evidence."""
    return Repository(client).info_text()


def stale_segment_blocking_archive(sql) -> str | None:
    """The WAL segment the primary's archiver is stuck on, when that segment lies past the end of its own
    timeline, i.e. was never part of the cluster's history (a recycled file marked `.ready` by a restartpoint
    that finished after promotion; pgBackRest refuses it: "[029] first page header ... long format").
    `sql` runs one query on the primary and returns the first value. None when the archiver is not stuck so."""
    seg = json.loads(sql(ARCHIVER_SQL)).get("last_failed_wal") or ""
    if len(seg) != 24 or not WAL_NAME.match(seg):
        return None
    if sql(f"SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name = '{seg}.ready'") != 1:
        return None
    tli = int(seg[:8], 16)
    current = int(sql("SELECT timeline_id FROM pg_control_checkpoint()"))
    if tli >= current:
        return None
    segment_bytes = int(sql(SEGMENT_BYTES_SQL))
    for line in (sql(f"SELECT pg_read_file('pg_wal/{current:08X}.history')") or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == str(tli):
            hi, lo = parts[1].split("/")
            end_segno = ((int(hi, 16) << 32) | int(lo, 16)) // segment_bytes
            return seg if segment_number(seg, segment_bytes) > end_segno else None
    return None


def mark_segment_done(client: docker.DockerClient, node: str, segment: str) -> None:
    """The operator's remedy for a stale segment (above): mark it archived so the archiver moves on; the next
    checkpoint then removes it like any archived segment."""
    status = f"{PGDATA}/pg_wal/archive_status/{segment}"
    code, out = _exec(client.containers.get(container(node)), f"mv {status}.ready {status}.done", timeout=10)
    if code != 0:
        raise TopologyError(f"could not mark {segment} archived on {node}: {out.strip()[:200]}")
