"""`python -m reports docs`: the measurement tables in docs/ are generated from kept data, never typed in.

A generated block in a Markdown file (README.md or docs/*.md) is everything between two marker lines:

    <!-- generated: failover-table from reports/measured/failover-*.jsonl -->
    (rendered here: where the numbers come from, then the tables)
    <!-- end generated -->

The name picks the renderer (BLOCKS below), the pattern the kept runs it reads (relative to the repository root;
kept runs are made by `python -m reports keep`, reports/measured.py). Each block starts with where its numbers
came from — the files, their rows, when they were measured and with which command — all read from the data; a
pattern that matches nothing renders what to run and how to keep it.

    python -m reports docs            # rewrite every block of README.md and docs/*.md from its data
    python -m reports docs --check    # rewrite nothing; exit 1 naming every block whose text is out of date

Exit codes: 0 written (or, with --check, every block fresh), 1 stale blocks (--check), 2 bad input (an unknown or
unclosed marker, a missing document, a kept file that cannot be read or holds a malformed row): one line.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reports import doc_tables as t
from reports.measured import DATASETS, REPO_ROOT, Dataset, InputError, Kept, layers_command, load_kept

OPEN = re.compile(r"^<!-- generated: (?P<name>[a-z0-9][a-z0-9-]*) from (?P<source>\S+) -->$")
CLOSE = "<!-- end generated -->"


@dataclass(frozen=True)
class Block:
    name: str
    dataset: str
    render: Callable[[Sequence[Kept]], str]
    valid: Callable[[dict], str | None] = lambda row: None

    @property
    def data(self) -> Dataset:
        return DATASETS[self.dataset]


BLOCKS: dict[str, Block] = {
    b.name: b
    for b in (
        Block("failover-table", "failover", t.failover, t.gap_row),
        Block("soft-fault-headline", "failover", t.soft_headline, t.gap_row),
        Block("hosts-table", "failover", t.hosts_side_by_side, t.gap_row),
        Block("etcd-table", "dcs_outage", t.dcs_outage, t.gap_row),
        Block("pgbouncer-table", "pgbouncer", t.pgbouncer, t.required),
        Block("citus-table", "citus", t.citus, t.required),
        Block("vector-recovery-table", "vector_recovery", t.vector_recovery, t.required),
        Block("vector-search-table", "vector_bench", t.vector_bench, t.required),
        Block("redis-table", "redis_cut", t.redis_cut, t.required),
        Block("alerts-table", "alert", t.alerts, t.required),
        Block("dr-table", "dr", t.dr, t.required),
        Block("load-failover-table", "load_failover", t.load_failover, t.required),
        Block("layers-table", "layers", t.layers, t.layer_row),
        Block("distortion-table", "txn_distortion", t.txn_distortion, t.required),
    )
}


# ---------------------------------------------------------------- markers


@dataclass(frozen=True)
class Found:
    """One block in a document: its marker lines (0-based indexes) and what is between them now."""

    doc: str
    name: str
    source: str
    open_line: int
    close_line: int
    body: tuple[str, ...]


def parse(doc: str, lines: Sequence[str]) -> list[Found]:
    """Every generated block of a document; a broken marker is an InputError naming the line."""
    found, current = [], None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("<!-- generated"):
            m = OPEN.match(stripped)
            if m is None:
                raise InputError(f"{doc}:{i + 1}: malformed marker (want '<!-- generated: NAME from PATTERN -->')")
            if current is not None:
                raise InputError(f"{doc}:{i + 1}: block opened inside block {current[0]} (line {current[2] + 1})")
            if m["name"] not in BLOCKS:
                raise InputError(f"{doc}:{i + 1}: unknown block {m['name']!r}; known: {', '.join(BLOCKS)}")
            current = (m["name"], m["source"], i)
        elif stripped == CLOSE:
            if current is None:
                raise InputError(f"{doc}:{i + 1}: '{CLOSE}' without a block")
            name, source, start = current
            found.append(Found(doc, name, source, start, i, tuple(lines[start + 1 : i])))
            current = None
    if current is not None:
        raise InputError(f"{doc}:{current[2] + 1}: block {current[0]} is never closed ('{CLOSE}')")
    return found


# ---------------------------------------------------------------- rendering


def _when(k: Kept) -> str:
    start, end = k.started[:16].replace("T", " "), k.ended[:16].replace("T", " ")
    if not end or end == start:
        return start or "an unknown time"
    return f"{start}–{end[11:]}" if end[:10] == start[:10] else f"{start} – {end}"


def provenance(block: Block, kept: Sequence[Kept]) -> str:
    if not kept:
        return (
            f"_No kept measurement yet: run `{block.data.command}`, keep its rows with "
            f"`{block.data.keep_command()}`, then `python -m reports docs`._"
        )
    lines = [f"_Generated by `python -m reports docs` from {len(kept)} kept run(s); do not edit by hand._", ""]
    for k in kept:
        h = k.header
        command = h.get("command") or (layers_command(k.rows) if block.data.json else "?")
        extra = []
        if block.data.json:
            if h.get("pgbench"):
                extra.append(str(h["pgbench"]).split(" (Debian")[0])
            machine = h.get("machine") if isinstance(h.get("machine"), dict) else {}
            if machine.get("cores"):
                extra.append(f"{machine['cores']} cores")
            if machine.get("loadavg_before"):
                extra.append(f"load average {machine['loadavg_before'][0]} before")
            if h.get("elapsed_s") is not None:
                extra.append(f"{h['elapsed_s']:.0f} s")
        env = h.get("env") if isinstance(h.get("env"), dict) else {}
        if env:
            extra.append("settings " + " ".join(f"{k_}={v}" for k_, v in sorted(env.items())))
        if h.get("code"):
            extra.append(f"code {h['code']}")
        lines.append(
            f"- `{k.path}`: {len(k.rows)} rows measured {_when(k)} with `{command}`"
            + (f" ({'; '.join(extra)})" if extra else "")
        )
    return "\n".join(lines)


def load_block(block: Block, source: str, root: Path) -> list[Kept]:
    """The kept runs a block's pattern matches, oldest first (by the data's own time, then by name)."""
    if Path(source).is_absolute() or ".." in Path(source).parts:
        raise InputError(f"{source}: a block's pattern must be relative to the repository, inside it")
    kept = []
    for path in sorted(root.glob(source)):
        k = load_kept(path, root, block.data.kinds, as_json=block.data.json)
        for row, lineno in zip(k.rows, k.lines, strict=True):
            why = block.valid(row)
            if why:
                raise InputError(f"{k.path}:{lineno}: {why}")
        kept.append(k)
    return sorted(kept, key=lambda k: (k.started, k.path))


def render(block: Block, kept: Sequence[Kept]) -> tuple[str, ...]:
    text = provenance(block, kept)
    if kept:
        text += "\n\n" + block.render(kept)
    # a blank line last, so the end marker never reads as part of a table
    return (*text.strip("\n").split("\n"), "")


# ---------------------------------------------------------------- documents


def default_documents(root: Path) -> list[Path]:
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


@dataclass(frozen=True)
class Outcome:
    found: Found
    fresh: bool


def process(doc: Path, root: Path, *, write: bool) -> list[Outcome]:
    """Regenerate one document's blocks (in place when `write`); what each block was."""
    rel = str(doc.relative_to(root)) if doc.is_relative_to(root) else str(doc)
    try:
        text = doc.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{rel}: cannot read ({err})") from None
    lines = text.split("\n")
    outcomes, new, at = [], [], 0
    for f in parse(rel, lines):
        body = render(BLOCKS[f.name], load_block(BLOCKS[f.name], f.source, root))
        outcomes.append(Outcome(f, body == f.body))
        new += [*lines[at : f.open_line + 1], *body]
        at = f.close_line
    new += lines[at:]
    if write and any(not o.fresh for o in outcomes):
        doc.write_text("\n".join(new), encoding="utf-8")
    return outcomes


def run(documents: Sequence[Path], root: Path, *, check: bool) -> tuple[int, list[str]]:
    """(exit code, lines to print)."""
    out, stale = [], 0
    for doc in documents:
        for o in process(doc, root, write=not check):
            where = f"{o.found.doc}:{o.found.open_line + 1} {o.found.name}"
            if o.fresh:
                out.append(f"{where}: fresh")
            else:
                stale += 1
                out.append(
                    f"{where}: STALE (its text differs from {o.found.source}; run: python -m reports docs)"
                    if check
                    else f"{where}: regenerated from {o.found.source}"
                )
    if check and stale:
        return 1, [*out, f"{stale} generated block(s) out of date"]
    return 0, out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("documents", nargs="*", type=Path, help="Markdown files (default: README.md and docs/*.md)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 naming every block that is stale")
    p.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root the patterns are relative to")


def main(args: argparse.Namespace) -> int:
    root = args.root.resolve()
    documents = [d.resolve() for d in args.documents] or default_documents(root)
    try:
        missing = next((d for d in documents if not d.is_file()), None)
        if missing is not None:
            raise InputError(f"{missing}: no such document")
        code, lines = run(documents, root, check=args.check)
    except InputError as err:
        print(f"docs: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return code
