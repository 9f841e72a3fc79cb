"""Elle's list-append analysis (Kingsbury & Alvaro, VLDB 2020) in Python: history in, frozen verdict out.
Belongs here: parsing the history contract, inferring dependencies, cycles, anomalies, models, their words and pictures.

Contract (also `python -m chaos txn-check HISTORY.jsonl --model MODEL [--json]`, see `cli`):

- Input: operations in index order, each `{"index": int, "time": int (ns), "process": int,
  "type": "invoke"|"ok"|"fail"|"info", "f": "txn", "value": [["append", key, int] |
  ["r", key, null | [int, ...]], ...]}`; keys are strings or integers, appended values are unique per
  key. An invocation's reads are null; an ok read of an empty key is [] (null is read as [], as Elle
  does). A completion may repeat its invocation's value or, when fail/info, give null. Any other key of
  an op (`node`, `server`, `in_recovery`, `timeline`, `lsn`, `path`, ...) is carried into the
  explanations, never required. Ops whose `process` is "nemesis" or whose `f` is not "txn" are fault
  marks: ignored by the analysis, shown next to the anomalies they surround. An invocation that never
  completes counts as info (its appends may have happened).
- `check(ops, model="strict-serializable", time_limit=1.0) -> Verdict` (model: one name or several);
  `Verdict.to_dict()` is Elle's result map `{"valid": true|false|"unknown", "anomaly-types": [...],
  "not": [...], "also-not": [...], "anomalies": {type: [instance, ...]}}` plus `model` and `stats`.
  Each instance is JSON-serialisable and has an `explanation` in words and the nearby `marks`; cycle
  instances have `cycle` (the operations, first = last), `steps` (the evidence of each edge) and `rels`.
- `explain(verdict)` is the human report; `plot(verdict, directory)` writes one PNG per cycle.
- Bad input raises `HistoryError` (a ValueError with a one-line message naming the line or op);
  an unknown model raises ValueError.
- `valid` is "unknown" when a component's search ran out of its `time_limit` (seconds) or no
  dependency could be inferred, unless something the model forbids was found anyway (then False).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos.checkers.elle.check import (
    DEFAULT_MODEL,
    DEFAULT_TIME_LIMIT,
    Verdict,
    check,
    check_file,
)
from chaos.checkers.elle.explain import report
from chaos.checkers.elle.history import HistoryError
from chaos.checkers.elle.models import MAIN_MODELS, MODELS
from chaos.checkers.elle.plot import plot_verdict

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TIME_LIMIT",
    "MAIN_MODELS",
    "MODELS",
    "HistoryError",
    "Verdict",
    "check",
    "check_file",
    "explain",
    "plot",
]


def explain(verdict: Verdict, max_per_type: int = 3) -> str:
    """The verdict as a human report: the models ruled out, then each anomaly in words."""
    return report(verdict.to_dict(), max_per_type=max_per_type)


def plot(verdict: Verdict | dict[str, Any], directory: str | Path, limit: int = 20) -> list[Path]:
    """One PNG per cycle anomaly (up to `limit` per type) in `directory`; returns the paths."""
    return plot_verdict(verdict, directory, limit=limit)
