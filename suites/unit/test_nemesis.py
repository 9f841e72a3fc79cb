"""The mixed-fault schedule: seeded, bounded, every kind reachable; the runner keeps to the schedule, marks a step
with nothing to target as skipped and an error as an error, and never runs past its deadline (no Docker)."""

from __future__ import annotations

import contextlib
import itertools

import pytest

from chaos.experiments import nemesis
from chaos.experiments.nemesis import KINDS, Nemesis, Step, schedule
from chaos.faults import FaultError

pytestmark = pytest.mark.unit


def test_same_seed_same_schedule_and_bounded():
    a, b, c = schedule(7, 180), schedule(7, 180), schedule(8, 180)
    assert a == b and a != c
    assert all(s.at < 180 for s in a) and 10 <= len(a) <= 40
    assert all(x.at + x.hold < y.at for x, y in itertools.pairwise(a))  # one fault at a time
    assert {s.kind for s in schedule(1, 3600)} == set(KINDS)
    with pytest.raises(ValueError, match="unknown nemesis kinds"):
        schedule(1, 10, kinds=("meteor",))


class Marks:
    def __init__(self):
        self.marks = []

    def mark(self, action, target, detail=""):
        self.marks.append((action, target, detail))


def test_runner_skips_marks_errors_and_keeps_its_deadline(monkeypatch):
    h = Marks()
    steps = [Step(0.0, "pause", 1.0), Step(1.0, "switchover", 0.0), Step(2.0, "replica_loss", 1.0),
             Step(50.0, "pause", 1.0)]  # fmt: skip
    n = Nemesis(cluster=None, history=h, steps=steps, sleep=lambda s: None, settle=0)
    seen = []

    @contextlib.contextmanager
    def fault(step):
        seen.append(step.kind)
        if step.kind == "switchover":
            raise FaultError("switchover refused: no healthy replica")
        yield None if step.kind == "replica_loss" else "patroni-1"

    monkeypatch.setattr(n, "_fault", fault)
    done = n.run(deadline_s=10)
    assert seen == ["pause", "switchover", "replica_loss"]  # the step at t+50 is past the deadline
    assert [d.get("target") for d in done] == ["patroni-1", None, None]
    assert ("nemesis-error", "switchover", "switchover refused: no healthy replica") in h.marks
    assert ("nemesis-skip", "replica_loss", "nothing to target right now") in h.marks
    assert nemesis.DECLARES  # what a mixed-fault test declares
