"""DR drill helpers without Docker: verify-output parsing, RPO arithmetic, phase spans, WAL segment ranges."""
from __future__ import annotations

import time

import pytest

from chaos.drill import Drill, rpo_seconds
from topology.backup import _verify_findings, segment_range

pytestmark = pytest.mark.unit

CLEAN = """stanza: dpg
    status: ok
      archiveId: 17-1, total WAL checked: 17, total valid WAL: 17
        missing: 0, checksum invalid: 0, size invalid: 0, other: 0
      backup: 20261125-213653F, status: valid, total files checked: 1280, total valid files: 1280
        missing: 0, checksum invalid: 0, size invalid: 0, other: 0"""


def test_verify_clean_output_has_no_findings():
    assert not _verify_findings(CLEAN)


@pytest.mark.parametrize("bad", ["checksum invalid: 1", "missing: 2", "size invalid: 1", "other: 3"])
def test_verify_findings_are_detected(bad):
    assert _verify_findings(CLEAN.replace("checksum invalid: 0, size invalid: 0, other: 0".split(",")[0], bad, 1)
                            if bad.startswith("checksum") else CLEAN.replace(bad.split(":")[0] + ": 0", bad, 1))


def test_rpo_is_the_missing_committed_time():
    assert rpo_seconds(100.0, 93.5) == 6.5
    assert rpo_seconds(100.0, 100.2) == 0.0      # clock jitter never gives a negative RPO
    assert rpo_seconds(None, 1.0) is None and rpo_seconds(1.0, None) is None


def test_drill_span_covers_consecutive_phases():
    d = Drill("x")
    with d.phase("a"):
        time.sleep(0.02)
    with d.phase("b"):
        time.sleep(0.02)
    assert d.span("a", "b") >= d.phases["a"] + d.phases["b"] - 0.01


def test_segment_range_crosses_a_log_boundary():
    assert segment_range("0000000600000000000000FF", "000000060000000100000001") == [
        "0000000600000000000000FF", "000000060000000100000000", "000000060000000100000001"]
