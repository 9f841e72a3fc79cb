"""Who used the CPU during a benchmark run: the host's busy share and each container's CPU time.

Reads kernel counters only (/proc/stat and the containers' cgroup CPU accounting, v1 or v2), so sampling
costs nothing next to the load. A container whose counters cannot be read is simply absent from the result.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_V1 = "/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage"  # ns
CGROUP_V2 = (
    "/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat",  # usage_usec
    "/sys/fs/cgroup/docker/{id}/cpu.stat",
)


def _host_jiffies() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies over all CPUs; busy includes steal (time the hypervisor ran someone else)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    steal = fields[7] if len(fields) > 7 else 0
    return total - idle, total, steal


def _container_ns(cid: str) -> int | None:
    p = Path(CGROUP_V1.format(id=cid))
    if p.exists():
        return int(p.read_text().strip())
    for tpl in CGROUP_V2:
        p = Path(tpl.format(id=cid))
        if p.exists():
            for line in p.read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
    return None


#: host processes worth naming: Docker's userland proxy forwards every published 127.0.0.1 port, and with the
#: fuse-overlayfs storage driver every write to a container's own filesystem goes through a FUSE daemon
#: not a process: the cores' time the hypervisor withheld (/proc/stat steal), listed with the users so it shows
STEAL = "steal (hypervisor: other guests)"
HOST_PROCESSES = {"docker-proxy": "docker-proxy (port forwarding)", "fuse-overlayfs": "fuse-overlayfs (storage)"}


def _host_process_ticks() -> dict[str, int]:
    """utime+stime clock ticks per named host process (summed over its instances)."""
    out: dict[str, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.find("(") + 1 : text.rfind(")")]
        if comm in HOST_PROCESSES:
            rest = text[text.rfind(")") + 2 :].split()
            out[comm] = out.get(comm, 0) + int(rest[11]) + int(rest[12])
    return out


def container_ids(names: list[str]) -> dict[str, str]:
    """name -> full id of the running containers among `names` (Docker unreachable: empty)."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        out = {}
        for n in names:
            with contextlib.suppress(docker.errors.NotFound):
                out[n] = client.containers.get(n).id
        return out
    except Exception:
        return {}


@dataclass(frozen=True)
class CpuUsage:
    seconds: float
    host_busy: float  # share of all cores, 0..1 (steal included)
    cores: int
    containers: dict[str, float]  # name -> cores used on average (1.0 = one full core)
    steal: float = 0.0  # share of all cores the hypervisor gave to other guests (a shared VM's noisy neighbours)

    def top(self, n: int = 4) -> list[tuple[str, float]]:
        return sorted(self.containers.items(), key=lambda kv: -kv[1])[:n]


class CpuSampler:
    """`with CpuSampler(ids) as s: ...` then `s.usage` (also usable with start()/stop())."""

    def __init__(self, ids: dict[str, str]):
        self.ids = ids
        self.usage: CpuUsage | None = None

    def start(self) -> CpuSampler:
        self._t0 = time.monotonic()
        self._host0 = _host_jiffies()
        self._c0 = {n: _container_ns(cid) for n, cid in self.ids.items()}
        self._p0 = _host_process_ticks()
        return self

    def stop(self, client_cpu_s: float = 0.0) -> CpuUsage:
        dt = max(time.monotonic() - self._t0, 1e-6)
        busy1, total1, steal1 = _host_jiffies()
        ticks = max(total1 - self._host0[1], 1)
        busy, steal = (busy1 - self._host0[0]) / ticks, (steal1 - self._host0[2]) / ticks
        per = {}
        for n, cid in self.ids.items():
            now, before = _container_ns(cid), self._c0.get(n)
            if now is not None and before is not None:
                per[n] = (now - before) / 1e9 / dt
        hz = os.sysconf("SC_CLK_TCK")
        for comm, ticks in _host_process_ticks().items():
            used = (ticks - self._p0.get(comm, 0)) / hz / dt
            if used > 0:
                per[HOST_PROCESSES[comm]] = used
        if client_cpu_s:
            per["client (load generator)"] = client_cpu_s / dt
        cores = os.cpu_count() or 1
        if steal > 0:
            per[STEAL] = steal * cores
        self.usage = CpuUsage(round(dt, 2), busy, cores, per, steal)
        return self.usage

    def __enter__(self) -> CpuSampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
