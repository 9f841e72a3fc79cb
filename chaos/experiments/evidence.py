"""An experiment's history as evidence: the timeline picture and the raw probe records, attached to Allure."""

from __future__ import annotations

import tempfile
from pathlib import Path

from chaos.checkers.timeline import render_timeline
from chaos.history import History
from topology import evidence


def attach_history(name: str, history: History, *, slo_ms: dict[str, float] | None = None) -> Path:
    """Timeline PNG + the raw probe records as CSV."""
    evidence.attach_csv(f"{name} probe records", history.to_csv())
    path = Path(tempfile.mkdtemp(prefix="dpg-timeline-")) / f"{name}.png"
    render_timeline(history, path, title=name, slo_ms=slo_ms)
    evidence.attach_png(f"{name} timeline", path)
    return path
