"""Evidence for reviews: Allure attachments and a JSON-lines measurement file per run.

Allure carries the per-scenario proof (timeline PNG, probe CSV, verdicts, cluster state, logs on failure);
`reports/out/measurements.jsonl` carries the numbers the benchmark and the scorecard aggregate.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import allure

from chaos.history import History
from reports.timeline import render_timeline

OUT_DIR = Path(os.environ.get("DPG_REPORT_DIR", Path(__file__).resolve().parent / "out"))


def attach_json(name: str, data: Any) -> None:
    allure.attach(json.dumps(data, indent=2, default=str), name=name, attachment_type=allure.attachment_type.JSON)


def attach_text(name: str, text: str) -> None:
    allure.attach(text, name=name, attachment_type=allure.attachment_type.TEXT)


def attach_history(name: str, history: History, *, slo_ms: dict[str, float] | None = None) -> Path:
    """Timeline PNG + the raw probe records as CSV."""
    allure.attach(history.to_csv(), name=f"{name} probe records", attachment_type=allure.attachment_type.CSV)
    path = Path(tempfile.mkdtemp(prefix="dpg-timeline-")) / f"{name}.png"
    render_timeline(history, path, title=name, slo_ms=slo_ms)
    allure.attach.file(str(path), name=f"{name} timeline", attachment_type=allure.attachment_type.PNG)
    return path


def record_measurement(kind: str, **fields: Any) -> None:
    """Append one measurement (a scenario's gaps, a benchmark row) for aggregation by reports/."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    row = {"kind": kind, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **fields}
    with open(OUT_DIR / "measurements.jsonl", "a") as fh:
        fh.write(json.dumps(row, default=str) + "\n")
