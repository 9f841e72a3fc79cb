"""Consistency models: which anomalies each forbids, which models a history rules out, and valid
histories accepted under every model. The matrix states by hand which of the nine models hold for
each shape, so a wrong entry in the lattice tables shows up as a wrong verdict."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chaos.checkers.elle import MAIN_MODELS, models
from suites.unit.elle_dsl import History, concurrent

pytestmark = pytest.mark.unit

RU, RC, RR, SI, SER = "read-uncommitted", "read-committed", "repeatable-read", "snapshot-isolation", "serializable"
SSSI, SSS, SSI, STRICT = (
    "strong-session-snapshot-isolation",
    "strong-session-serializable",
    "strong-snapshot-isolation",
    "strict-serializable",
)


def _strictly_serial() -> History:
    """Each transaction sees everything before it: every edge agrees with real time."""
    h = History()
    h.txn(0, "ax1").txn(1, "rx1 ay1").txn(0, "rx1 ry1 ax2").txn(2, "rx12 ry1 az3")
    h.txn(3, "ax4", "fail")  # aborted and never seen: harmless
    h.txn(1, "ay2", "info")  # outcome unknown, later seen: it happened
    return h.txn(2, "ry12 rz3 rx12").mark("kill", "pg-1").txn(0, "rz3 az4").txn(4, "rz34")


def _g_single_process() -> History:
    return History().txn(0, "ak1").txn(1, "ak2").txn(1, "rk1").txn(2, "rk12")


def _g_single_realtime() -> History:
    return History().txn(0, "ak1").txn(1, "ak2").txn(2, "rk1").txn(3, "rk12")


def _g2_process() -> History:
    return History().invoke(1, "ax1 ry").txn(0, "ay1").txn(0, "rx").complete(1)


def _g2_realtime() -> History:
    return History().invoke(1, "ax1 ry").txn(2, "ay1").txn(0, "rx").complete(1)


@pytest.mark.parametrize("model", MAIN_MODELS)
def test_strictly_serial_history_is_valid_under_every_model(model: str) -> None:
    v = _strictly_serial().check(model)
    assert v.valid is True, v.to_dict()
    assert (v.anomaly_types, v.not_, v.also_not) == ((), (), ())
    assert v.stats["edges"] > 0


MATRIX: list[tuple[str, Callable[[], History], set[str]]] = [
    ("write skew (G2-item)", lambda: concurrent("rg ah1", "rh ag1"), {RU, RC, SI, SSSI, SSI}),
    ("read skew (G-single-item)", lambda: concurrent("am5 an5", "am6 rn", "rm56"), {RU, RC}),
    ("circular information flow (G1c)", lambda: concurrent("ax7 ry7", "ax8 ay7", "rx78"), {RU}),
    ("stale read after a completed write", _g_single_realtime, {RU, RC, RR, SI, SER, SSSI, SSS}),
    ("a process misses its own write", _g_single_process, {RU, RC, RR, SI, SER}),
    ("write skew across real time", _g2_realtime, {RU, RC, RR, SI, SER, SSSI, SSS, SSI}),
    ("write skew across a session", _g2_process, {RU, RC, RR, SI, SER, SSSI, SSI}),
]


@pytest.mark.parametrize(("what", "build", "holds"), MATRIX, ids=[m[0] for m in MATRIX])
def test_which_models_hold(what: str, build: Callable[[], History], holds: set[str]) -> None:
    got = {m for m in MAIN_MODELS if build().check(m).valid is True}
    assert got == holds, what


def test_several_models_at_once_must_all_hold() -> None:
    h = concurrent("rg ah1", "rh ag1")
    assert h.check([SI, RC]).valid is True
    both = h.check([SI, RR])
    assert both.valid is False and both.model == (SI, RR) and both.anomaly_types == ("G2-item",)


def test_forbidden_sets_follow_the_lattice() -> None:
    ser = models.forbidden([SER])
    assert {
        "G0",
        "G1a",
        "G1b",
        "G1c",
        "G-single-item",
        "G-nonadjacent-item",
        "G2-item",
        "internal",
        "lost-update",
        "incompatible-order",
        "dirty-update",
        "future-read",
        "duplicate-elements",
    } <= ser
    assert not ser & {"G2-item-realtime", "G-single-item-process", "G1c-realtime"}
    si = models.forbidden([SI])
    assert "G-single-item" in si and "G-nonadjacent-item" in si and "G2-item" not in si
    strict = models.forbidden([STRICT])
    assert {"G2-item-realtime", "G-single-item-process", "G0-realtime", "G2-item-process"} <= strict
    assert models.forbidden([RU]) >= {"G0", "duplicate-elements"} and "G1a" not in models.forbidden([RU])


def test_boundary_names_the_weakest_models() -> None:
    assert models.boundary(["G1c"])[0] == (RC,)
    assert models.boundary(["G2-item"])[0] == (RR,)
    assert models.boundary(["G-single-item-realtime"])[0] == (SSI,)
    low, high = models.boundary(["G-single-item"])
    assert low == ("consistent-view", RR) and SI in high and STRICT in high
    assert models.boundary([]) == ((), ())


def test_implications() -> None:
    assert {"G1c", "G1", "G0-process", "G0-realtime", "G1-realtime"} <= models.implied_anomalies(["G0"])
    assert "G2-item" in models.implied_anomalies(["lost-update"])
    assert "G-single-item" in models.anomalies_implying(["G2"])
    assert STRICT in models.models_implying([SER]) and RC not in models.models_implying([SER])


def test_model_names_and_aliases() -> None:
    assert models.canonical("strong-serializable") == STRICT
    assert models.canonical("PL-2") == RC
    assert set(MAIN_MODELS) <= models.MODELS
    with pytest.raises(ValueError, match="unknown model 'linearisable'"):
        models.canonical("linearisable")
