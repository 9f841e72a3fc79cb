"""The fault journal: every fault's inject and heal, written to disk as they happen, so a run that was SIGKILLed in
the middle of a fault can still be undone exactly (Chaos Toolkit's rollbacks, kept where a killed process cannot
lose them).

In the embedded topology the reaper could also sweep by label (everything of ours that is paused or stopped).
In a target it cannot: a paused or stopped container there may be the cluster team's own doing, and touching it
would be touching what is not ours. So `python -m chaos heal` undoes, in a target, exactly what the journal says a
dead run of ours left injected — the containers it froze, stopped or cut, the dynamic config it changed — and
nothing else.

Each line: {"event": "inject"|"injected"|"healed", "id", "kind", "describe", "undo": {...}, "pid", "inventory",
"at"}. An inject without its "healed" whose process is gone is pending; `undo` is what `Fault.undo_record()` said
it needs (the "injected" line adds what inject learnt).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from topology.evidence import OUT_DIR
from topology.inventory import current

log = logging.getLogger("dpg.chaos")
_lock = threading.Lock()


def path() -> Path:
    return Path(os.environ.get("DPG_FAULT_JOURNAL", OUT_DIR / "fault-journal.jsonl"))


def _inventory_key() -> str:
    inv = current()
    return f"{inv.kind}:{inv.name}:{inv.source}"


def write(event: str, fault: Any) -> None:
    """Append one event of a fault; a journal that cannot be written is logged, never a reason to stop a heal."""
    try:
        undo = fault.undo_record() if event in ("inject", "injected") else None
    except Exception as exc:  # a record that cannot be made is logged; the fault and its heal go on
        log.warning("fault journal: no undo record for %s: %s", fault.id, exc)
        undo = None
    note(event, fault.id, type(fault).__name__, fault.describe(), undo)


def note(event: str, fid: str, kind: str, describe: str, undo: dict[str, Any] | None = None) -> None:
    """Append one event (also for what is not a Fault but must go when a run dies: the probe schema)."""
    row = {
        "event": event,
        "id": fid,
        "kind": kind,
        "describe": describe,
        "undo": undo,
        "pid": os.getpid(),
        "inventory": _inventory_key(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    try:
        with _lock:
            p = path()
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "a") as fh:
                fh.write(json.dumps(row, default=str) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as exc:
        log.warning("fault journal %s not written: %s", path(), exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pending(*, inventory: str | None = None) -> list[dict[str, Any]]:
    """Injects of dead processes that were never healed, for this inventory (oldest first)."""
    p = path()
    if not p.exists():
        return []
    injects: dict[str, dict] = {}
    healed: set[str] = set()
    for line in p.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by the kill
        if not isinstance(row, dict) or "id" not in row:
            continue
        if row.get("event") == "inject":
            injects[row["id"]] = row
        elif row.get("event") == "injected" and row["id"] in injects:
            injects[row["id"]] = {**injects[row["id"]], "undo": row.get("undo")}  # what inject learnt
        elif row.get("event") == "healed":
            healed.add(row["id"])
    key = inventory or _inventory_key()
    return [
        r
        for fid, r in injects.items()
        if fid not in healed and r.get("inventory") == key and not _alive(int(r.get("pid") or 0))
    ]


def mark_healed(row: dict[str, Any]) -> None:
    """Record that the reaper undid a pending fault (so the next `chaos heal` does not try again)."""
    with _lock, open(path(), "a") as fh:
        fh.write(json.dumps({**row, "event": "healed", "by": "chaos heal", "at": time.strftime("%Y-%m-%dT%H:%M:%S")}))
        fh.write("\n")


def compact() -> None:
    """Drop every finished fault from the journal (pytest calls this at the end of a run that healed everything)."""
    p = path()
    if not p.exists():
        return
    with _lock:
        rows = []
        for line in p.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        rows = [r for r in rows if isinstance(r, dict) and "id" in r]
        healed = {r["id"] for r in rows if r.get("event") == "healed"}
        keep = [r for r in rows if r["id"] not in healed]
        p.write_text("".join(json.dumps(r, default=str) + "\n" for r in keep))
