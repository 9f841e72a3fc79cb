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

#: (mark, whose log, pattern, the mark it cannot precede) in the order a failover goes through them. The finer
#: marks inside the shutdown and the promotion say which step of each took the time: the shutdown checkpoint, the
#: archive push of the segment the shutdown closes (PostgreSQL switches segments at shutdown when archiving), the
#: promotion's archive lookup of the next timeline's history file, and the end of archive recovery.
MARKS: tuple[tuple[str, str, re.Pattern, str | None], ...] = tuple(
    (m, node, re.compile(p), after)
    for m, node, p, after in (
        ("stop_requested", "old", r"received (fast|immediate) shutdown request", None),
        ("patroni_woken", "old", r"dpg-postmaster-watch: postmaster \d+ exited; woke", None),
        ("crash_detected", "old", r"Primary crashed\. Failing over", None),
        ("demoted_itself", "old", r"Demoting self \(immediate-nolock\)", None),
        ("shutdown_checkpoint_done", "old", r"LOG:\s+checkpoint complete:", "stop_requested"),
        ("last_segment_archived", "old", r"archive-push command end", "shutdown_checkpoint_done"),
        ("stopped", "old", r"database system is shut down", None),
        ("key_released", "old", r"Leader key released", None),
        (
            "lock_acquired",
            "new",
            r"promoted self to leader by acquiring session lock|"
            r"Cleaning up failover key after acquiring leader lock",
            None,
        ),
        ("promote_requested", "new", r"^server promoting", None),
        ("promote_received", "new", r"LOG:\s+received promote request", None),
        ("timeline_selected", "new", r"LOG:\s+selected new timeline ID", None),
        ("recovery_complete", "new", r"LOG:\s+archive recovery complete", None),
        ("accepting_writes", "new", r"database system is ready to accept connections", None),
    )
)
MARK_ORDER = tuple(m for m, _, _, _ in MARKS)

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
    """Each mark's first occurrence at or after the injection (or after its anchor mark), in ms after the
    injection (marks not seen are absent).

    `old`/`new`: (unix seconds, message) of the old and the new leader. A mark is taken from its own node only,
    so one node's restart after the failover cannot be mistaken for the other's promotion."""
    lines = {"old": sorted(old), "new": sorted(new)}
    marks: dict[str, int] = {}
    seen: dict[str, float] = {}
    for mark, who, pattern, after in MARKS:
        if after is not None and after not in seen:
            continue  # its anchor was not logged: a match could be anyone's (a routine checkpoint, a routine push)
        since = seen[after] if after is not None else injected_wall
        hit = next((t for t, msg in lines[who] if t >= since and pattern.search(msg)), None)
        if hit is not None:
            seen[mark] = hit
            marks[mark] = round((hit - injected_wall) * 1000)
    return within_failover(marks)


def within_failover(marks: dict[str, int | float]) -> dict[str, int | float]:
    """The marks up to the new leader accepting writes. After that the old node's own lines belong to its rejoin
    (a crashed leader restarted as a replica logs a shutdown request and "shut down" seconds later), not to the
    failover. Without accepting_writes, all of them."""
    end = marks.get("accepting_writes")
    if not isinstance(end, int | float):
        return dict(marks)
    return {m: t for m, t in marks.items() if isinstance(t, int | float) and t <= end}


def describe(marks: dict[str, int], gaps_ms: dict[str, float | None], attempts: dict[str, dict] | None = None) -> str:
    """A small text table for the evidence: every mark, then each entry point's gap for comparison, with the
    longest single attempt inside it (chaos.checkers.writes.GapReport.attempts) when given."""
    rows = [f"{m:<26} {marks[m]:>7} ms" for m in MARK_ORDER if m in marks]
    for ep, g in gaps_ms.items():
        if g is None:
            continue
        a = (attempts or {}).get(ep) or {}
        slowest = f"   slowest attempt {a['slowest_ms']:.0f} ms ({a['slowest']})" if a.get("slowest_ms") else ""
        rows.append(f"gap {ep:<22} {g:>7.0f} ms{slowest}")
    return "ms after the injection (from the nodes' own log lines; gaps from the probes)\n" + "\n".join(rows)
