"""Reading the measurement files (JSON lines) the suites append to: one reader for every report."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def json_objects(lines: Iterable[str]) -> Iterator[dict[str, Any] | None]:
    """Each non-blank line as a dict, or None where it is not a JSON object (callers count those as malformed:
    a silent skip would hide bad data)."""
    for line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            yield None
            continue
        yield row if isinstance(row, dict) else None
