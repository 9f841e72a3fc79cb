"""Timeline and gap-summary PNGs render headless, with and without data."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.checkers.timeline import render_gap_summary, render_timeline
from chaos.checkers.writes import write_gap
from chaos.history import History, Mark, Op

pytestmark = pytest.mark.unit

EPOCH = 1_700_000_000.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NODES = {"patroni-1": ("172.25.0.3:5432", 1), "patroni-2": ("172.25.0.4:5432", 2)}


def _realistic_history() -> History:
    """Four entry points writing every 50 ms for 20 s; patroni-1 frozen at 5 s, patroni-2 takes over at 8 s."""
    h = History()
    value = 0
    for lane, probe in enumerate(("haproxy", "pgbouncer", "traefik", "multihost")):
        for i in range(400):
            t = i * 0.05 + lane * 0.01
            value += 1
            node = "patroni-1" if t < 5.0 else "patroni-2"
            server, tl = NODES[node]
            if 5.0 <= t < 8.0:
                outcome = "info" if t < 5.2 else "fail"
                h.add(Op(probe, "write", value, t, t + 0.2, EPOCH + t, outcome, error="OperationalError: x"))
                continue
            h.add(Op(probe, "write", value, t, t + 0.004, EPOCH + t, "ok", None, server, node, tl, EPOCH + t + 0.002))
            if i % 10 == 0:
                h.add(Op(probe, "read", value, t, t + 0.003, EPOCH + t + 0.001, "ok", None, server, node, tl))
    h.add_mark(Mark(EPOCH + 5.0, 5.0, "inject", "patroni-1", "SIGSTOP"))
    h.add_mark(Mark(EPOCH + 8.0, 8.0, "leader-change", "patroni-2"))
    h.add_mark(Mark(EPOCH + 15.0, 15.0, "heal", "patroni-1", "SIGCONT"))
    return h


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1024
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_timeline_realistic(tmp_path: Path) -> None:
    out = render_timeline(
        _realistic_history(),
        tmp_path / "sub" / "timeline.png",
        title="freeze leader",
        slo_ms={"haproxy": 2000, "*": 5000},
    )
    assert out == tmp_path / "sub" / "timeline.png"
    _assert_png(out)


def test_timeline_empty_history(tmp_path: Path) -> None:
    _assert_png(render_timeline(History(), tmp_path / "empty.png", title="nothing ran"))


def test_timeline_marks_only(tmp_path: Path) -> None:
    h = History()
    h.mark("inject", "etcd-1", "partition")
    _assert_png(render_timeline(h, str(tmp_path / "marks.png"), title="marks only"))


def test_timeline_single_op_lane(tmp_path: Path) -> None:
    h = History([Op("direct:patroni-3", "write", 1, 0.0, 0.1, EPOCH, "fail", error="OperationalError: read-only")])
    _assert_png(render_timeline(h, tmp_path / "one.png", title="one op", slo_ms={"*": 100}))


def test_gap_summary(tmp_path: Path) -> None:
    h = _realistic_history()
    reports = {p: write_gap(h, p) for p in h.probes()}
    reports["direct:patroni-3"] = write_gap(h, "direct:patroni-3")  # not measurable -> "n/a" bar
    assert reports["haproxy"].longest_gap_ms == pytest.approx(3050, abs=1)
    _assert_png(render_gap_summary(reports, tmp_path / "gaps.png", slo_ms={"*": 2000}))
    _assert_png(render_gap_summary({}, tmp_path / "gaps-empty.png"))
