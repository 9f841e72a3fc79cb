"""Kept measurements: the runs behind every published table, as data under reports/measured/.

A run's numbers land in `reports/out/measurements.jsonl` (appended to by every run, never committed).
`python -m reports keep DATASET` copies one run's rows of a dataset into `reports/measured/<dataset>-<date>.jsonl`,
whose first line (kind "kept") says how they were measured: the command, the settings the benchmark recorded,
the code it ran, where the rows came from. `python -m reports docs` renders the tables in docs/ from these files
only, so a table always matches its data.

    python -m reports keep failover --from reports/out/bench-20261205-100112/measurements.jsonl
    python -m reports keep dcs_outage --command "pytest suites/etcd" --since 2026-12-05T09:00
    python -m reports keep layers --from reports/out/layers-20261205-101500/layers.json

The per-layer benchmark keeps its own `layers.json` (a `meta` block and the rows) as it is: the dataset `layers`.

Exit codes of `keep`: 0 kept, 1 no row of the dataset in the source, 2 bad input (unknown dataset, missing or
unreadable file, no command known).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.jsonl import json_objects

REPO_ROOT = Path(__file__).resolve().parents[1]
MEASURED = REPO_ROOT / "reports" / "measured"
KEPT = "kept"  # kind of a kept file's first line


class InputError(ValueError):
    """Bad input for `keep` or `docs`: one line, exit 2."""


@dataclass(frozen=True)
class Dataset:
    """What `keep` copies (rows of these kinds) and the command that measures it."""

    name: str
    kinds: tuple[str, ...]
    command: str
    json: bool = False  # kept as one JSON document (layers.json), not JSON lines

    def keep_command(self) -> str:
        if self.name == "layers":
            return "python -m reports keep layers --from reports/out/layers-<stamp>/layers.json"
        if self.name == "failover":
            return "python -m reports keep failover --from reports/out/bench-<stamp>/measurements.jsonl"
        return f"python -m reports keep {self.name} --command {shlex.quote(self.command)}"


ALL_FAULTS = "switchover,graceful_stop,postmaster_crash,hard_kill,isolation,freeze,replica_loss,double_failover"
DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("failover", ("failover",), f"python -m reports bench --runs 5 --faults {ALL_FAULTS}"),
        Dataset("dcs_outage", ("dcs_outage",), "pytest suites/etcd"),
        Dataset(
            "pgbouncer",
            ("pgbouncer_share", "pgbouncer_refusal", "pgbouncer_queue", "pgbouncer_restart"),
            "pytest suites/pgbouncer",
        ),
        Dataset(
            "citus",
            ("citus_worker_down", "citus_coordinator_down", "citus_latency", "citus_balance"),
            "DPG_CITUS_IMAGE=<image> pytest suites/citus",
        ),
        Dataset("vector_recovery", ("vector_recovery",), "pytest suites/vector"),
        Dataset(
            "vector_bench",
            ("vector_bench", "vector_recall"),
            "python -m reports vector-bench --queries 2000 --exact-queries 300 --ef-search 10,40,100 --rebuilds 15",
        ),
        Dataset("redis_cut", ("redis_cut",), "pytest suites/redis"),
        Dataset("alert", ("alert",), "pytest suites/monitoring"),
        Dataset("dr", ("dr",), "pytest suites/dr"),
        Dataset("load_failover", ("failover", "failover_load"), "python -m reports bench --load 0.5 --runs 10"),
        Dataset("layers", ("layer_bench",), "python -m reports layers --seconds 10", json=True),
        Dataset(
            "txn_distortion",
            ("txn_distortion",),
            "pytest suites/consistency/test_list_append.py::test_workload_distortion (once per pair)",
        ),
    )
}


# ---------------------------------------------------------------- reading kept files


@dataclass
class Kept:
    """One kept run: its file (relative to the repository), how it was measured, its rows (with line numbers)."""

    path: str
    header: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    @property
    def started(self) -> str:
        """When the run began, from the data: the layers meta, else the first row's `at`."""
        if "started" in self.header:
            return str(self.header["started"])
        ats = [str(r["at"]) for r in self.rows if r.get("at")]
        return min(ats) if ats else ""

    @property
    def ended(self) -> str:
        ats = [str(r["at"]) for r in self.rows if r.get("at")]
        return max(ats) if ats else ""


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def load_kept(path: Path, root: Path, kinds: tuple[str, ...], *, as_json: bool = False) -> Kept:
    """A kept file's header and its rows of `kinds`; a line that is not a JSON object is an InputError naming it."""
    rel = _rel(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{rel}: cannot read ({err})") from None
    if as_json:
        try:
            doc = json.loads(text)
        except ValueError as err:
            raise InputError(f"{rel}: not JSON ({err})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict) or not isinstance(doc.get("rows"), list):
            raise InputError(f"{rel}: expected an object with 'meta' and 'rows' (layers.json)")
        if not all(isinstance(r, dict) for r in doc["rows"]):
            raise InputError(f"{rel}: every row must be an object")
        return Kept(rel, doc["meta"], doc["rows"], list(range(1, len(doc["rows"]) + 1)))
    out = Kept(rel)
    for lineno, (raw, row) in enumerate(_numbered(text.splitlines()), start=1):
        if not raw.strip():
            continue
        if row is None:
            raise InputError(f"{rel}:{lineno}: not a JSON object")
        if row.get("kind") == KEPT:
            out.header = row
        elif row.get("kind") in kinds:
            out.rows.append(row)
            out.lines.append(lineno)
    return out


def _numbered(lines: list[str]):
    """(line, parsed object or None) for every line, blank ones included, so numbers match the file."""
    for line in lines:
        if not line.strip():
            yield line, {}
        else:
            yield line, next(json_objects([line]))


# ---------------------------------------------------------------- keep


def _code_version(root: Path) -> str | None:
    """`git describe --always --dirty` of the checkout that keeps the run (None outside git)."""
    try:
        res = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    return res.stdout.strip() or None


def bench_command(bench_json: Path) -> tuple[str, dict[str, str]] | None:
    """The `python -m reports bench` command line and recorded settings of a benchmark directory's bench.json."""
    try:
        doc = json.loads(bench_json.read_text(encoding="utf-8"))
        cfg = doc["config"]
        parts = ["python", "-m", "reports", "bench", "--runs", str(cfg["runs"]), "--faults", ",".join(cfg["faults"])]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    env = doc.get("env") if isinstance(doc.get("env"), dict) else {}
    prefix = [f"{k}={v}" for k, v in sorted(env.items()) if k == "DPG_MEMBER_PROBE_TIMEOUT_MS"]
    return shlex.join(prefix + parts), {str(k): str(v) for k, v in env.items()}


def layers_command(rows: list[dict[str, Any]]) -> str:
    """The `python -m reports layers` command a layers.json was measured with, read back from its rows."""
    pg = [r for r in rows if r.get("engine") == "pgbench"]
    lo = [r for r in rows if r.get("engine") == "locust"]
    parts = ["python", "-m", "reports", "layers"]
    if pg:
        parts += ["--seconds", f"{pg[0].get('seconds', '?')}", "--clients", f"{pg[0].get('clients', '?')}"]
    if lo:
        parts += ["--locust-seconds", f"{lo[0].get('seconds', '?')}", "--locust-users", f"{lo[0].get('clients', '?')}"]
    elif pg:
        parts += ["--locust-seconds", "0"]
    return " ".join(parts)


def target_path(out_dir: Path, dataset: Dataset, date: str) -> Path:
    """reports/measured/<dataset>-<date>.<ext>, with -run2, -run3 ... when a run of that day is already kept."""
    ext = "json" if dataset.json else "jsonl"
    path = out_dir / f"{dataset.name}-{date}.{ext}"
    n = 2
    while path.exists():
        path = out_dir / f"{dataset.name}-{date}-run{n}.{ext}"
        n += 1
    return path


def _date(stamp: str) -> str:
    return stamp[:10] if len(stamp) >= 10 and stamp[4] == "-" and stamp[7] == "-" else time.strftime("%Y-%m-%d")


def keep_rows(
    dataset: Dataset,
    source: Path,
    *,
    out_dir: Path = MEASURED,
    command: str | None = None,
    since: str | None = None,
    root: Path = REPO_ROOT,
) -> tuple[Path, int, str]:
    """Copy the rows of `dataset` (at or after `since`) from `source` into a new kept file.
    Returns (path, rows kept, a note). InputError for bad input; LookupError when there is nothing to keep."""
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    if dataset.json:
        return _keep_layers(dataset, source, out_dir=out_dir, command=command, root=root)
    rows, malformed = [], 0
    try:
        with open(source, encoding="utf-8", errors="replace") as fh:
            for row in json_objects(fh):
                if row is None:
                    malformed += 1
                elif row.get("kind") in dataset.kinds and (since is None or str(row.get("at", "")) >= since):
                    rows.append(row)
    except OSError as err:
        raise InputError(f"{source}: cannot read ({err})") from None
    if not rows:
        raise LookupError(
            f"no {dataset.name} rows (kinds {', '.join(dataset.kinds)}) in {source}"
            + (f" at or after {since}" if since else "")
        )
    env: dict[str, str] = {}
    if command is None:
        derived = bench_command(source.parent / "bench.json") if dataset.name == "failover" else None
        if derived is None:
            raise InputError(
                f"how were these rows measured? pass --command, e.g. --command {shlex.quote(dataset.command)}"
            )
        command, env = derived
    ats = sorted(str(r.get("at", "")) for r in rows if r.get("at"))
    header = {
        "kind": KEPT,
        "dataset": dataset.name,
        "command": command,
        "rows": len(rows),
        "first_at": ats[0] if ats else None,
        "last_at": ats[-1] if ats else None,
        "env": env,
        "code": _code_version(root),
        "source": _rel(source, root),
        "kept_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = target_path(out_dir, dataset, _date(ats[0] if ats else ""))
    with open(path, "w", encoding="utf-8") as fh:
        for row in (header, *rows):
            fh.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
    notes = [f"measured {ats[0]} to {ats[-1]}" if ats else "rows without a time"]
    if malformed:
        notes.append(f"{malformed} malformed line(s) of {source} skipped")
    return path, len(rows), "; ".join(notes)


def _keep_layers(
    dataset: Dataset, source: Path, *, out_dir: Path, command: str | None, root: Path
) -> tuple[Path, int, str]:
    kept = load_kept(source, root, dataset.kinds, as_json=True)
    if not kept.rows:
        raise LookupError(f"no rows in {source}")
    meta = dict(kept.header)
    meta.setdefault("command", command or layers_command(kept.rows))
    meta.setdefault("code", _code_version(root))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = target_path(out_dir, dataset, _date(str(meta.get("started", ""))))
    path.write_text(json.dumps({"meta": meta, "rows": kept.rows}, indent=2, default=str) + "\n", encoding="utf-8")
    md = source.with_suffix(".md")
    if md.is_file():
        path.with_suffix(".md").write_text(md.read_text(encoding="utf-8"), encoding="utf-8")
    return path, len(kept.rows), ""


def _default_source(dataset: Dataset) -> Path:
    if dataset.json:
        found = sorted((REPO_ROOT / "reports" / "out").glob("layers-*/layers.json"))
        return found[-1] if found else REPO_ROOT / "reports" / "out" / "layers-<stamp>" / "layers.json"
    from topology.evidence import OUT_DIR

    return OUT_DIR / "measurements.jsonl"


def add_keep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", metavar="DATASET", help=f"one of: {', '.join(DATASETS)}")
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        help="measurements file (default reports/out/measurements.jsonl; "
        "layers: the newest reports/out/layers-*/layers.json)",
    )
    p.add_argument("--since", default=None, help="only rows measured at or after this local time (2026-12-05T09:00)")
    p.add_argument(
        "--command",
        default=None,
        help="how the rows were measured (required unless a bench.json next to the source or layers.json says it)",
    )
    p.add_argument("--out", type=Path, default=MEASURED, help="directory of kept runs (default reports/measured)")


def run_keep(args: argparse.Namespace) -> int:
    dataset = DATASETS.get(args.dataset)
    if dataset is None:
        print(f"keep: unknown dataset {args.dataset!r}; known: {', '.join(DATASETS)}", file=sys.stderr)
        return 2
    source = args.source or _default_source(dataset)
    try:
        path, n, note = keep_rows(dataset, source, out_dir=args.out, command=args.command, since=args.since)
    except InputError as err:
        print(f"keep: {err}", file=sys.stderr)
        return 2
    except LookupError as err:
        print(f"keep: {err}", file=sys.stderr)
        return 1
    print(
        f"kept {n} {dataset.name} row(s) in {_rel(path, REPO_ROOT)}{'; ' + note if note else ''}; "
        "now regenerate the tables: python -m reports docs"
    )
    return 0
