"""Print why each failing test of this CI run failed, one block per test, from every junit file of the run.

CI's log is what survives a run (Allure results and measurements stay on the runner), and the end of the log is
what gets read: the multi-host pass's failures were invisible there on 2026-12-03. Usage: failures.py JUNIT...
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

MAX_CHARS = 700  # per failure: the assertion line with its phase marks, not the traceback


def failures(path: Path) -> list[tuple[str, str]]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        return [(str(path), f"unreadable junit file: {e}")]
    out = []
    for case in root.iter("testcase"):
        for bad in (*case.findall("failure"), *case.findall("error")):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            message = " ".join((bad.get("message") or bad.text or "").split())
            out.append((name, message[:MAX_CHARS]))
    return out


def main(argv: list[str]) -> int:
    found = [(p, f) for p in map(Path, argv) if p.exists() for f in failures(p)]
    if not found:
        print("  none")
    for path, (name, message) in found:
        print(f"  {path.name}: {name}\n    {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
