"""Where a failover's write gap went: the moments the nodes themselves logged, as ms after the injection.

The write gap says how long writers waited; these marks say who they waited for: the old primary's shutdown
(and the archive push it includes), the image's postmaster watcher waking Patroni (`patroni_woken`), Patroni
releasing the leader key, the candidate taking it, PostgreSQL's promotion, and, after `accepting_writes`, the
routers and the clients' own retry. Read from the Patroni and PostgreSQL lines of the old and the new leader
(Patroni 4.0.7, PostgreSQL 17; a line that does not appear, as "Leader key released" in a shutdown, leaves its
mark out). Pure: log lines in, marks out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

#: (mark, whose log, pattern) in the order a failover goes through them
MARKS: tuple[tuple[str, str, re.Pattern], ...] = tuple(
    (m, node, re.compile(p))
    for m, node, p in (
        ("stop_requested", "old", r"received (fast|immediate) shutdown request"),
        ("patroni_woken", "old", r"dpg-postmaster-watch: postmaster \d+ exited; woke"),
        ("crash_detected", "old", r"Primary crashed\. Failing over"),
        ("demoted_itself", "old", r"Demoting self \(immediate-nolock\)"),
        ("stopped", "old", r"database system is shut down"),
        ("key_released", "old", r"Leader key released"),
        (
            "lock_acquired",
            "new",
            r"promoted self to leader by acquiring session lock|"
            r"Cleaning up failover key after acquiring leader lock",
        ),
        ("promote_requested", "new", r"^server promoting"),
        ("accepting_writes", "new", r"database system is ready to accept connections"),
    )
)
MARK_ORDER = tuple(m for m, _, _ in MARKS)

_DOCKER_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z\s(.*)$")


def parse_docker_log(text: str) -> list[tuple[float, str]]:
    """(unix seconds, message) of each line of `docker logs --timestamps` output (other lines are skipped)."""
    out = []
    for line in text.splitlines():
        m = _DOCKER_TS.match(line)
        if not m:
            continue
        frac = float(m.group(2) or 0.0)
        base = datetime.fromisoformat(m.group(1) + "+00:00").timestamp()
        out.append((base + frac, m.group(3)))
    return out


def failover_marks(
    old: Iterable[tuple[float, str]], new: Iterable[tuple[float, str]], *, injected_wall: float
) -> dict[str, int]:
    """Each mark's first occurrence at or after the injection, in ms after it (marks not seen are absent).

    `old`/`new`: (unix seconds, message) of the old and the new leader. A mark is taken from its own node only,
    so one node's restart after the failover cannot be mistaken for the other's promotion."""
    lines = {"old": sorted(old), "new": sorted(new)}
    marks: dict[str, int] = {}
    for mark, who, pattern in MARKS:
        hit = next((t for t, msg in lines[who] if t >= injected_wall and pattern.search(msg)), None)
        if hit is not None:
            marks[mark] = round((hit - injected_wall) * 1000)
    return marks


def describe(marks: dict[str, int], gaps_ms: dict[str, float | None]) -> str:
    """A small text table for the evidence: every mark, then each entry point's gap for comparison."""
    rows = [f"{m:<18} {marks[m]:>7} ms" for m in MARK_ORDER if m in marks]
    rows += [f"gap {ep:<14} {g:>7.0f} ms" for ep, g in gaps_ms.items() if g is not None]
    return "ms after the injection (from the nodes' own log lines; gaps from the probes)\n" + "\n".join(rows)
