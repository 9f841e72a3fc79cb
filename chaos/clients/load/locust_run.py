"""Run Locust headless as a bounded subprocess and read back its statistics.

Bounded twice: Locust's own `--run-time` and a subprocess timeout (run time + grace) after which the process
is interrupted, then killed. Statistics come from Locust's `--csv` files (the "Aggregated" row of
<prefix>_stats.csv); the optional per-request log (DPG_LOAD_LOG) is parsed by `read_request_log`.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from chaos.history import Request

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
USER_CLASSES = ("PointReadUser", "WriteUser", "MixUser", "VectorSearchUser")
GRACE_S = 30.0


class LocustError(RuntimeError):
    """Locust did not run or left no statistics (the message carries the tail of its output)."""


@dataclass(frozen=True)
class LocustStats:
    user_class: str
    target: str
    users: int
    seconds: float
    requests: int
    failures: int
    ops_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def command(user_class: str, *, users: int, seconds: int, csv_prefix: Path) -> list[str]:
    if user_class not in USER_CLASSES:
        raise ValueError(f"unknown user class {user_class!r}; known: {', '.join(USER_CLASSES)}")
    if users < 1 or seconds < 1:
        raise ValueError("users and seconds must be >= 1")
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "5",
        "--csv",
        str(csv_prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
        user_class,
    ]


def run(
    user_class: str, target: str, *, users: int, seconds: int, out_dir: Path, request_log: Path | None = None
) -> LocustStats:
    """One bounded Locust run of `user_class` through `target`; raises LocustError if it produced nothing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / f"locust-{target}-{user_class}"
    env = dict(os.environ, DPG_LOAD_TARGET=target)
    if user_class == "VectorSearchUser":
        env["DPG_LOAD_VECTOR_TARGET"] = target
    if request_log is not None:
        env["DPG_LOAD_LOG"] = str(request_log)
    log = prefix.with_suffix(".log")
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            command(user_class, users=users, seconds=seconds, csv_prefix=prefix),
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[3],
        )
        try:
            proc.wait(timeout=seconds + GRACE_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        tail = log.read_text(errors="replace")[-1500:]
        raise LocustError(f"locust {user_class} via {target} wrote no statistics (exit {proc.returncode}):\n{tail}")
    return parse_stats(stats, user_class=user_class, target=target, users=users, seconds=seconds)


def _num(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "", "N/A") else None
    except ValueError:
        return None


def parse_stats(path: Path, *, user_class: str, target: str, users: int, seconds: float) -> LocustStats:
    """The "Aggregated" row of a Locust <prefix>_stats.csv."""
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("Name") == "Aggregated"]
    if not rows:
        raise LocustError(f"{path}: no Aggregated row")
    r = rows[0]
    requests = int(_num(r.get("Request Count")) or 0)
    return LocustStats(
        user_class,
        target,
        users,
        seconds,
        requests,
        int(_num(r.get("Failure Count")) or 0),
        _num(r.get("Requests/s")) or 0.0,
        _num(r.get("50%")) if requests else None,
        _num(r.get("95%")) if requests else None,
        _num(r.get("99%")) if requests else None,
    )


def read_request_log(path: Path) -> list[Request]:
    """Requests of a DPG_LOAD_LOG file, oldest first; malformed lines (a killed writer's last) are skipped."""
    out = []
    if not path.exists():
        return out
    with open(path, newline="", errors="replace") as fh:
        for row in csv.reader(fh):
            try:
                out.append(Request(float(row[0]), float(row[1]), row[2], row[3] == "1", row[4] if len(row) > 4 else ""))
            except (IndexError, ValueError):
                continue
    return sorted(out, key=lambda r: r.wall)
