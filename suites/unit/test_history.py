"""History container: filtering, thread safety and serialisation round trips."""

from __future__ import annotations

import csv
import io
import json
import threading

import pytest

from chaos.history import OP_FIELDS, History, Mark, Op

pytestmark = pytest.mark.unit


def _op(value: int, probe: str = "haproxy", outcome: str = "ok", kind: str = "write", **kw: object) -> Op:
    t = 1000.0 + value * 0.02
    return Op(probe=probe, kind=kind, value=value, start=t, end=t + 0.005, wall=1.7e9 + t, outcome=outcome, **kw)


def test_filters_and_values() -> None:
    h = History()
    h.add(_op(1))
    h.add(_op(2, outcome="fail", error="OperationalError: connection refused"))
    h.add(_op(3, probe="pgbouncer", outcome="info"))
    h.add(_op(4, probe="pgbouncer", kind="read"))
    assert [o.value for o in h.ops(probe="haproxy")] == [1, 2]
    assert [o.value for o in h.ops(kind="write", outcome="ok")] == [1]
    assert h.probes() == ["haproxy", "pgbouncer"]
    assert h.values() == {1, 2, 3}
    assert h.values(outcome="info") == {3}
    assert h.values(kind="read") == {4}
    assert len(h) == 4


def test_rejects_unknown_outcome() -> None:
    with pytest.raises(ValueError):
        _op(1, outcome="timeout")


def test_mark_stamps_both_clocks() -> None:
    h = History()
    m = h.mark("inject", "patroni-1", "SIGSTOP")
    assert isinstance(m, Mark) and m.wall > 1e9 and m.mono > 0
    assert h.marks() == [m]


def test_snapshots_are_copies() -> None:
    h = History([_op(1)])
    h.ops().clear()
    assert len(h.ops()) == 1


def test_thread_safety_smoke() -> None:
    h = History()
    per_thread, threads = 500, 8

    def work(tid: int) -> None:
        for i in range(per_thread):
            h.add(_op(tid * per_thread + i, probe=f"p{tid}"))
            if i % 100 == 0:
                h.mark("tick", f"p{tid}")
                h.ops()  # concurrent readers must not break writers

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(h) == per_thread * threads
    assert h.values() == set(range(per_thread * threads))
    assert len(h.marks()) == threads * (per_thread // 100)
    assert h.probes() == sorted(f"p{t}" for t in range(threads))


def test_csv_round_trip() -> None:
    ops = [
        _op(1, server="172.25.0.3:5432", node="patroni-1", timeline=1, commit_ts=1.7e9 + 0.123456789),
        _op(2, outcome="fail", error='OperationalError: "quoted", comma\nsecond line'),
        _op(3, outcome="info"),
        Op("multihost", "read", None, 1.0, 2.0, 3.0, "ok"),
    ]
    text = History(ops).to_csv()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(OP_FIELDS)
    assert len(rows) == 1 + len(ops)
    assert History.from_csv(text).ops() == ops


def test_jsonable_round_trip() -> None:
    h = History([_op(1, timeline=2), _op(2, outcome="info")], [Mark(1.0, 2.0, "heal", "patroni-1")])
    data = json.loads(json.dumps(h.to_jsonable()))
    assert data["probes"] == ["haproxy"]
    back = History.from_jsonable(data)
    assert back.ops() == h.ops() and back.marks() == h.marks()
