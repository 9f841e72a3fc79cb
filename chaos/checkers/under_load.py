"""What a fault did to requests under load: failures, their window, the write gap and the latency spike.

Pure functions over the per-request log (chaos/clients/load/locust_run.read_request_log), so the verdict of the
chaos-under-load test is unit-testable and the timeline is drawn from the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

from chaos.history import Request

WRITE = "write"


def _p(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[max(math.ceil(p / 100 * len(s)), 1) - 1]


@dataclass(frozen=True)
class Window:
    """One time bucket: start (seconds since t0), ok and failed requests, latency percentiles of all requests."""

    t: float
    ok: int
    failed: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


def windows(requests: Sequence[Request], t0: float, *, width: float = 1.0) -> list[Window]:
    """Requests bucketed by start time into `width`-second windows from `t0` (empty windows included)."""
    if not requests:
        return []
    last = max(r.wall for r in requests)
    n = int((last - t0) // width) + 1
    buckets: list[list[Request]] = [[] for _ in range(max(n, 0))]
    for r in requests:
        i = int((r.wall - t0) // width)
        if 0 <= i < len(buckets):
            buckets[i].append(r)
    out = []
    for i, b in enumerate(buckets):
        lat = [r.ms for r in b]
        out.append(
            Window(
                i * width,
                sum(r.ok for r in b),
                sum(not r.ok for r in b),
                _p(lat, 50),
                _p(lat, 99),
                max(lat) if lat else None,
            )
        )
    return out


@dataclass(frozen=True)
class LoadImpact:
    requests: int
    failed: int
    failed_before: int  # failures before the injection (steady state must have none)
    first_failure_s: float | None  # after the injection
    last_failure_s: float | None
    failure_window_ms: float | None  # first to last failure (0 for a single one)
    write_gap_ms: float | None  # longest pause between acknowledged writes after the injection
    p99_before_ms: float | None  # p99 over the steady state before the injection
    p99_peak_ms: float | None  # worst 1 s-window p99 after the injection
    max_after_ms: float | None  # slowest single request after the injection
    failed_tail: int  # failures in the last `tail_s` of the run
    errors: dict[str, int]  # error type -> count

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def impact(requests: Sequence[Request], inject_wall: float, *, tail_s: float = 5.0) -> LoadImpact:
    reqs = sorted(requests, key=lambda r: r.wall)
    before = [r for r in reqs if r.wall + r.ms / 1000 < inject_wall]
    after = [r for r in reqs if r.wall + r.ms / 1000 >= inject_wall]
    fails = [r for r in after if not r.ok]
    first = fails[0].wall - inject_wall if fails else None
    last = max(r.wall + r.ms / 1000 for r in fails) - inject_wall if fails else None
    acks = sorted(r.wall + r.ms / 1000 for r in after if r.ok and r.name == WRITE)
    # the gap starts at the last acknowledged write before the injection
    prev = [r.wall + r.ms / 1000 for r in before if r.ok and r.name == WRITE]
    points = ([max(prev)] if prev else []) + acks
    gap = max((b - a for a, b in pairwise(points)), default=None)
    post = windows(after, inject_wall)
    end = reqs[-1].wall if reqs else inject_wall
    errors: dict[str, int] = {}
    for r in reqs:
        if not r.ok:
            key = r.error.split(":")[0] or "?"
            errors[key] = errors.get(key, 0) + 1
    return LoadImpact(
        requests=len(reqs),
        failed=sum(not r.ok for r in reqs),
        failed_before=sum(not r.ok for r in before),
        first_failure_s=first,
        last_failure_s=last,
        failure_window_ms=None if first is None else (last - first) * 1000,
        write_gap_ms=None if gap is None else gap * 1000,
        p99_before_ms=_p([r.ms for r in before], 99),
        p99_peak_ms=max((w.p99_ms for w in post if w.p99_ms is not None), default=None),
        max_after_ms=max((r.ms for r in after), default=None),
        failed_tail=sum(not r.ok for r in reqs if r.wall >= end - tail_s),
        errors=errors,
    )
