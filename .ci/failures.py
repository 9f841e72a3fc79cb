"""Print why the failing tests of this CI run failed, from every junit file of the run: the first failure in run
order in full (after it, the others are often its consequences), then the rest grouped by their reason.

CI's log is what survives a run (Allure results and measurements stay on the runner), and only its end is read:
the multi-host pass's failures were invisible there on 2026-12-03, and on 2026-12-05 the reasons of 24 failures
filled the visible tail with the last two, not the first one that explained them all. Usage: failures.py JUNIT...
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

FIRST_CHARS = 1500  # the first failure: the assertion with its phase marks
MAX_CHARS = 300  # every other reason: enough to tell whether it is the first one's consequence

#: numbers, hex ids and addresses differ between tests that failed for one reason
_VARYING = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{8,}\b|\d+(\.\d+)?")


def failures(path: Path) -> list[tuple[str, str]]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        return [(str(path), f"unreadable junit file: {e}")]
    out = []
    for case in root.iter("testcase"):
        for bad in (*case.findall("failure"), *case.findall("error")):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            out.append((name, " ".join((bad.get("message") or bad.text or "").split())))
    return out


def reason_key(message: str) -> str:
    return _VARYING.sub("#", message[:MAX_CHARS])


def main(argv: list[str]) -> int:
    found = [(p.name, *f) for p in map(Path, argv) if p.exists() for f in failures(p)]
    if not found:
        print("  none")
        return 0
    (where, name, message), rest = found[0], found[1:]
    print(f"  first failure ({where}): {name}\n    {message[:FIRST_CHARS]}")
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for item in rest:
        groups.setdefault(reason_key(item[2]), []).append(item)
    for items in groups.values():
        where, name, message = items[0]
        also = f" and {len(items) - 1} more with the same reason" if len(items) > 1 else ""
        print(f"  {where}: {name}{also}\n    {message[:MAX_CHARS]}")
        for _, other, _ in items[1:]:
            print(f"      also {other}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
