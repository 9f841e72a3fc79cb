"""An experiment's history as evidence: the timeline picture and the raw probe records, attached to Allure."""

from __future__ import annotations

import tempfile
from pathlib import Path

from chaos.checkers.timeline import render_timeline
from chaos.history import History
from topology import evidence


def attach_history(name: str, history: History, *, slo_ms: dict[str, float] | None = None) -> None:
    """Timeline PNG + the raw probe records as CSV. Allure copies the picture into its results, so the scratch
    directory goes at once (a benchmark of 60 runs used to leave 60 of them in /tmp)."""
    evidence.attach_csv(f"{name} probe records", history.to_csv())
    with tempfile.TemporaryDirectory(prefix="dpg-timeline-") as scratch:
        path = Path(scratch) / f"{name}.png"
        render_timeline(history, path, title=name, slo_ms=slo_ms)
        evidence.attach_png(f"{name} timeline", path)
