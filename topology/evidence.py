"""Evidence for reviews, at the bottom of the layers: Allure attachments and the run's measurement file.

Allure carries the per-scenario proof (verdicts, cluster state, logs on failure); `reports/out/measurements.jsonl`
carries the numbers the benchmarks and the scorecard aggregate. The system under test (alerts, the repair guard)
and the chaos library both write here; `reports/` only reads what runs wrote, so nothing below it imports it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import allure

OUT_DIR = Path(os.environ.get("DPG_REPORT_DIR", Path(__file__).resolve().parent.parent / "reports" / "out"))


def attach_json(name: str, data: Any) -> None:
    allure.attach(json.dumps(data, indent=2, default=str), name=name, attachment_type=allure.attachment_type.JSON)


def attach_text(name: str, text: str) -> None:
    allure.attach(text, name=name, attachment_type=allure.attachment_type.TEXT)


def attach_png(name: str, path: Path) -> None:
    allure.attach.file(str(path), name=name, attachment_type=allure.attachment_type.PNG)


def attach_csv(name: str, text: str) -> None:
    allure.attach(text, name=name, attachment_type=allure.attachment_type.CSV)


def record_measurement(kind: str, **fields: Any) -> None:
    """Append one measurement (a scenario's gaps, a benchmark row) for aggregation by reports/."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    row = {"kind": kind, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **fields}
    with open(OUT_DIR / "measurements.jsonl", "a") as fh:
        fh.write(json.dumps(row, default=str) + "\n")
