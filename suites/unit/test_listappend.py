"""The list-append client without a database: its SQL, how it classifies each way a transaction can end, its record
(Elle's contract, checked by the checker itself), and that the checker goes red on the client's seeded defect and on a
stale replica behind the RO path (a fake PostgreSQL, suites/unit/listappend_fake.py)."""

from __future__ import annotations

import itertools
import json

import psycopg
import pytest
from psycopg import errors as pgerrors

from chaos.checkers import consistency
from chaos.checkers.elle import check
from chaos.clients.listappend import (
    AppendSettings,
    ListAppend,
    Recorder,
    TxnFailed,
    TxnUnknown,
    append_sql,
    begin_sql,
    ddl,
    no_deadline,
    read_sql,
    run_txn,
)
from topology.endpoints import Endpoint

from .listappend_fake import FakeCursor, FakeDB

pytestmark = pytest.mark.unit

RW, RW2, RO = (Endpoint("fake-rw", "patroni", "127.0.0.1", "1"), Endpoint("fake-rw2", "patroni", "127.0.0.1", "2"),
               Endpoint("fake-ro", "patroni", "127.0.0.1", "3"))  # fmt: skip
FAST = AppendSettings(rate=2000.0, processes=3, max_txns=600, retry_cap=0.001, max_seconds=30)


def run(db: FakeDB, settings: AppendSettings = FAST, ro: tuple[Endpoint, ...] = (), rw=(RW,), seed: int = 1):
    w = ListAppend(list(rw), list(ro), settings, seed=seed, connect=db.connect, deadline=no_deadline, key_base=0)
    with w.running():
        for t in w.sessions:  # they end when the budget is spent (or at max_seconds)
            t.join(timeout=20)
    w.final_reads(rw[0], within=5)
    return w


# ------------------------------------------------------------------------------------------------ SQL


def test_sql_shapes():
    assert append_sql("probe.txn_1") == (
        "INSERT INTO probe.txn_1 AS t (k, v) VALUES (%s, ARRAY[%s]::int[]) "
        "ON CONFLICT (k) DO UPDATE SET v = t.v || EXCLUDED.v"
    )
    assert read_sql("probe.txn_0") == "SELECT v FROM probe.txn_0 WHERE k = %s"
    assert begin_sql("serializable", False) == "BEGIN ISOLATION LEVEL SERIALIZABLE"
    assert begin_sql("repeatable-read", True) == "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    assert begin_sql("read-committed", False) == "BEGIN ISOLATION LEVEL READ COMMITTED"
    assert ddl("probe", 2, "ro") == [
        "CREATE TABLE IF NOT EXISTS probe.txn_0 (k bigint PRIMARY KEY, v int[] NOT NULL)",
        'GRANT SELECT ON probe.txn_0 TO "ro"',
        "CREATE TABLE IF NOT EXISTS probe.txn_1 (k bigint PRIMARY KEY, v int[] NOT NULL)",
        'GRANT SELECT ON probe.txn_1 TO "ro"',
    ]
    with pytest.raises(ValueError, match="isolation"):
        AppendSettings(isolation="snapshot")
    assert AppendSettings(rate=4, processes=2).interval() == 0.5


# ------------------------------------------------------------------------------------------------ classification


class Scripted:
    """A connection that answers each statement kind as told (an exception to raise, or a status)."""

    def __init__(self, **answers):
        self.answers, self.closed, self.sent = answers, False, []

    def execute(self, sql, params=()):
        kind = sql.split()[0] if not sql.startswith("SELECT set_config") else "META"
        kind = "READ" if sql.startswith("SELECT v") else kind
        self.sent.append(kind)
        answer = self.answers.get(kind)
        if isinstance(answer, BaseException):
            raise answer
        if kind == "META":
            return FakeCursor(("2000", "patroni-1", "10.0.0.2", False, "0/3000060", 3))
        if kind == "READ":
            return FakeCursor(([1, 2],))
        return FakeCursor(status=answer or kind)

    def close(self):
        self.closed = True


MOPS = [["append", 1, 3], ["r", 1, None]]


def txn(conn):
    return run_txn(conn, MOPS, isolation="serializable", read_only=False, sql_key=lambda k: k, schema="probe",
                   settings=AppendSettings(), deadline=no_deadline)  # fmt: skip


@pytest.mark.parametrize(
    "answers, expected, phase",
    [
        ({"BEGIN": psycopg.OperationalError("server closed the connection")}, TxnFailed, "begin"),
        ({"META": pgerrors.AdminShutdown("terminating")}, TxnFailed, "meta"),
        ({"INSERT": pgerrors.SerializationFailure("concurrent update")}, TxnFailed, "statements"),
        ({"INSERT": pgerrors.QueryCanceled("statement timeout")}, TxnFailed, "statements"),
        ({"READ": psycopg.OperationalError("connection lost")}, TxnFailed, "statements"),
        ({"COMMIT": pgerrors.SerializationFailure("rw conflict")}, TxnFailed, "commit"),
        ({"COMMIT": pgerrors.DeadlockDetected("deadlock")}, TxnFailed, "commit"),
        ({"COMMIT": pgerrors.UniqueViolation("dup")}, TxnFailed, "commit"),
        ({"COMMIT": "ROLLBACK"}, TxnFailed, "commit"),
        ({"COMMIT": psycopg.OperationalError("server closed the connection")}, TxnUnknown, "commit"),
        ({"COMMIT": pgerrors.AdminShutdown("terminating connection")}, TxnUnknown, "commit"),
        ({"COMMIT": pgerrors.QueryCanceled("canceling wait for synchronous replication")}, TxnUnknown, "commit"),
    ],
)
def test_how_a_transaction_ends(answers, expected, phase):
    """Before COMMIT is sent nothing can have committed (fail); in reply to COMMIT only 40001/40P01/class 23 or a
    ROLLBACK tag prove it did not (fail); anything else there is unknown (info)."""
    with pytest.raises(expected) as err:
        txn(Scripted(**answers))
    assert err.value.phase == phase
    assert type(err.value) is expected


def test_an_ok_transaction_returns_its_reads_and_where_it_ran():
    done, meta = txn(Scripted())
    assert done == [["append", 1, 3], ["r", 1, [1, 2]]]
    assert meta == {"server": "patroni-1", "addr": "10.0.0.2", "in_recovery": False, "lsn": "0/3000060", "timeline": 3}


# ------------------------------------------------------------------------------------------------ the record


def test_record_follows_the_contract_and_checks_valid(tmp_path):
    """Against a strictly serializable fake with conflicts, lost connections and refusals: every completion has its
    invocation, info gives the process a new id, the file re-checks with `txn-check`'s parser, strict-serializable
    holds, and the final reads lose no acknowledged append."""
    db = FakeDB(seed=3, conflict=0.05, lost_before=0.03, lost_at_commit=0.03, refuse=0.02)
    w = run(db, ro=(RO,))
    ops = w.recorder.ops()
    txns = [o for o in ops if o["f"] == "txn"]
    outcomes = {o["type"] for o in txns}
    assert outcomes == {"invoke", "ok", "fail", "info"}, outcomes
    assert sum(o["type"] == "invoke" for o in txns) == sum(o["type"] != "invoke" for o in txns)
    assert len([o for o in txns if o["type"] == "invoke" and not o["path"].startswith("final")]) == FAST.max_txns
    assert [o["index"] for o in ops] == list(range(len(ops)))
    assert all(a["time"] <= b["time"] for a, b in itertools.pairwise(ops))
    # a process never runs again after an info
    after_info = {o["process"] for o in txns if o["type"] == "info"}
    last_seen = {}
    for o in txns:
        last_seen[o["process"]] = o
    assert all(last_seen[p]["type"] == "info" for p in after_info)
    ok = [o for o in txns if o["type"] == "ok"]
    assert all({"server", "in_recovery", "lsn", "timeline", "path", "isolation", "wall"} <= o.keys() for o in ok)
    assert all(o["isolation"] == "repeatable-read" for o in ok if o["path"] == "fake-ro")
    path = w.recorder.write(tmp_path / "history.jsonl")
    assert check([json.loads(line) for line in path.read_text().splitlines()]).valid is True
    result = consistency.analyse(ops)
    assert result["whole"]["valid"] is True and result["whole"]["strongest"] == ["strict-serializable"]
    assert result["lost"]["lost"] == [] and result["lost"]["final_keys"] == len(w.keys.all())
    assert set(result["counts"]) == {"fake-rw", "fake-ro", "final:fake-rw"}


def test_the_budget_and_the_pace_bound_the_run():
    w = run(FakeDB(), AppendSettings(rate=50.0, processes=2, max_txns=10_000, max_seconds=1.0))
    n = sum(o["type"] == "invoke" for o in w.recorder.ops() if not o["path"].startswith("final"))
    assert 20 <= n <= 75, n  # ~50/s for 1 s, never the 10,000 of the budget


def test_marks_are_nemesis_lines():
    r = Recorder()
    r.mark("inject", "dpg-patroni-1", "Killed")
    (op,) = r.ops()
    assert op["process"] == "nemesis" and op["f"] == "inject" and op["value"] == "dpg-patroni-1"


# ------------------------------------------------------------------------------------------------ shown red


def test_seeded_defect_failed_commit_reported_ok_is_caught():
    """The client's seeded defect (a failed transaction recorded as ok) must turn the checker red: the lie's own
    read after its append shows a version later reads contradict (incompatible-order), and its lost append is
    overtaken by realtime-later appends (G0-realtime) and missing from the final reads."""
    db = FakeDB(seed=5, conflict=0.15)
    honest = consistency.analyse(run(db).recorder.ops())
    assert honest["whole"]["valid"] is True and honest["lost"]["lost"] == []
    liar = run(FakeDB(seed=5, conflict=0.15), AppendSettings(**{**FAST.__dict__, "lie_commit_ok": True}))
    ops = liar.recorder.ops()
    assert any(o.get("error", "").startswith("LIE") for o in ops)
    result = consistency.analyse(ops)
    assert result["whole"]["valid"] is False
    assert {"incompatible-order", "G0-realtime"} & set(result["whole"]["anomalies"]), result["whole"]["anomalies"]
    assert result["lost"]["lost"], "the lie's appends are missing from the final reads"


def test_client_rollbacks_give_the_lie_something_to_lie_about_without_any_conflict():
    """CI, 2026-12-03: a live 15 s run had no 40001 at all, so the liar never lied. With rollback_every the client
    itself ends every Nth writing transaction in ROLLBACK: honest, those are fails and the history stays valid; lied
    about, they turn the checker red although the database never conflicted."""
    settings = AppendSettings(**{**FAST.__dict__, "rollback_every": 4})
    honest = run(FakeDB(seed=5, conflict=0.0), settings).recorder.ops()
    rolled = [o for o in honest if o.get("error", "").startswith("rolled back by the client")]
    assert rolled and all(o["type"] == "fail" for o in rolled)
    assert consistency.analyse(honest)["whole"]["valid"] is True
    liar = run(FakeDB(seed=5, conflict=0.0), AppendSettings(**{**settings.__dict__, "lie_commit_ok": True}))
    ops = liar.recorder.ops()
    assert any(o.get("error", "").startswith("LIE (was: rolled back") for o in ops)
    result = consistency.analyse(ops)
    assert result["whole"]["valid"] is False, result["whole"]
    assert result["lost"]["lost"], "the lie's appends are missing from the final reads"


def test_a_stale_replica_behind_the_ro_path_shows_realtime_anomalies_only_in_its_view():
    """A replica 5 appends behind: the RO path's view loses strict-serializable (a read misses what had committed
    before it began), keeps serializable; the RW path's view stays strict-serializable."""
    db = FakeDB(seed=7, lag={"fake-ro": 5})
    result = consistency.analyse(run(db, ro=(RO,)).recorder.ops())
    ro, rw = result["paths"]["fake-ro"], result["paths"]["fake-rw"]
    assert rw["valid"] is True
    assert ro["valid"] is False and all(a.endswith("-realtime") for a in ro["anomalies"]), ro["anomalies"]
    assert consistency.holds(ro, "serializable") and not consistency.holds(ro, "strict-serializable")
    stale = result["staleness"]
    assert stale["fake-rw"]["stale"] == 0 and stale["fake-ro"]["stale"] > 0 and stale["fake-ro"]["max_s"] > 0


def test_view_strips_other_paths_reads_only():
    ops = [
        {"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "txn", "value": [["r", 1, None]], "path": "b"},
        {"index": 1, "time": 1, "process": 0, "type": "ok", "f": "txn", "value": [["r", 1, []]], "path": "b"},
        {"index": 2, "time": 2, "process": 1, "type": "invoke", "f": "txn",
         "value": [["append", 1, 1], ["r", 1, None]], "path": "b"},
        {"index": 3, "time": 3, "process": 1, "type": "ok", "f": "txn",
         "value": [["append", 1, 1], ["r", 1, [1]]], "path": "b"},
        {"index": 4, "time": 4, "process": 2, "type": "invoke", "f": "txn", "value": [["r", 1, None]], "path": "a"},
        {"index": 5, "time": 5, "process": 2, "type": "ok", "f": "txn", "value": [["r", 1, [1]]], "path": "a"},
    ]  # fmt: skip
    v = consistency.view(ops, "a")
    assert [o["index"] for o in v] == [2, 3, 4, 5]
    assert v[1]["value"] == [["append", 1, 1]]
    assert consistency.paths(ops) == ["a", "b"]


def test_strongest_models():
    assert consistency.strongest([]) == ["strict-serializable"]
    assert consistency.strongest(["strict-serializable", "strong-snapshot-isolation", "strong-session-serializable",
                                  "strong-session-snapshot-isolation"]) == ["serializable"]  # fmt: skip
    assert consistency.strongest(["strict-serializable", "strong-session-serializable", "serializable",
                                  "strong-snapshot-isolation"]) == ["repeatable-read",
                                                                    "strong-session-snapshot-isolation"]  # fmt: skip


def test_the_experiment_checks_saves_and_records_a_run(tmp_path, monkeypatch):
    """TxnExperiment.finish on a fake run: final reads, the history file (re-checkable), the verdict and one
    `consistency` row per path plus `all` in the measurements."""
    from chaos.experiments import txn as txn_mod
    from topology import evidence

    monkeypatch.setattr(evidence, "OUT_DIR", tmp_path)
    monkeypatch.setattr(txn_mod.endpoints, "haproxy", lambda: RW)
    db = FakeDB(seed=11, lag={"fake-ro": 3})
    exp = txn_mod.TxnExperiment(None, "unit", rw=[RW], ro=[RO], settings=FAST, variant="fake")
    w = ListAppend([RW], [RO], FAST, seed=1, connect=db.connect, deadline=no_deadline, key_base=0)
    with w.running():
        for t in w.sessions:
            t.join(timeout=20)
    result = exp.finish(w, started=0.0)
    assert result.history_file.exists() and check_file_ok(result.history_file)
    rows = [json.loads(line) for line in (tmp_path / "measurements.jsonl").read_text().splitlines()]
    assert {r["path"] for r in rows} == {"all", "fake-rw", "fake-ro"}
    assert all(r["kind"] == "consistency" and r["scenario"] == "unit" and r["variant"] == "fake" for r in rows)
    ro = next(r for r in rows if r["path"] == "fake-ro")
    assert ro["valid"] is False and "strict-serializable" not in ro["strongest"]
    assert result.rw_promise["valid"] is True and result.summary["final_keys_read"] == len(w.keys.all())


def check_file_ok(path) -> bool:
    from chaos.checkers.elle import check_file

    return check_file(path, "read-committed").valid is True


def _txn(i, p, value, done, path="a", typ="ok"):
    return [{"index": 2 * i, "time": 2 * i, "process": p, "type": "invoke", "f": "txn", "path": path,
             "value": [[f, k, None] if f == "r" else [f, k, v] for f, k, v in value]},
            {"index": 2 * i + 1, "time": 2 * i + 1, "process": p, "type": typ, "f": "txn", "path": path,
             "value": done}]  # fmt: skip


def test_a_lost_acknowledged_append_is_forgiven_but_a_read_of_it_is_not():
    """An acknowledged append the final read misses is a G0-realtime cycle (a realtime-later append is read instead);
    forgiving it (asynchronous replication's bounded tail) makes the rest strict-serializable again. Had a reader
    seen the lost value first, the contradiction stays: reads went back in time."""
    base = (_txn(0, 0, [["append", 1, 1]], [["append", 1, 1]]) + _txn(1, 1, [["append", 1, 2]], [["append", 1, 2]])
            + _txn(2, 2, [["append", 1, 3]], [["append", 1, 3]]))  # fmt: skip
    final = _txn(9, 9, [["r", 1, None]], [["r", 1, [1, 3]]], path="final:haproxy")
    ops = base + final
    lost = consistency.lost_appends(ops)["lost"]
    assert [(x["key"], x["value"]) for x in lost] == [(1, 2)]
    row = consistency.verdict_row(ops)
    assert row["valid"] is False and "G0-realtime" in row["anomalies"]
    assert consistency.verdict_row(consistency.forgive_lost(ops, lost))["valid"] is True
    seen = base[:4] + _txn(3, 3, [["r", 1, None]], [["r", 1, [1, 2]]]) + base[4:] + final
    seen = [{**o, "index": i, "time": i} for i, o in enumerate(seen)]
    lost = consistency.lost_appends(seen)["lost"]
    forgiven = consistency.verdict_row(consistency.forgive_lost(seen, lost))
    assert forgiven["valid"] is False and "incompatible-order" in forgiven["anomalies"], forgiven["anomalies"]
