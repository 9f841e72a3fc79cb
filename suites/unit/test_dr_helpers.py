"""DR drill helpers without Docker: verify-output parsing, RPO arithmetic, phase spans, WAL segment ranges."""

from __future__ import annotations

import time

import pytest

from chaos.experiments.drill import Drill, rpo_seconds
from topology.backup import _verify_findings, segment_range, stale_segment_blocking_archive

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
    assert _verify_findings(
        CLEAN.replace(["checksum invalid: 0", " size invalid: 0", " other: 0"][0], bad, 1)
        if bad.startswith("checksum")
        else CLEAN.replace(bad.split(":")[0] + ": 0", bad, 1)
    )


def test_rpo_is_the_missing_committed_time():
    assert rpo_seconds(100.0, 93.5) == 6.5
    assert rpo_seconds(100.0, 100.2) == 0.0  # clock jitter never gives a negative RPO
    assert rpo_seconds(None, 1.0) is None and rpo_seconds(1.0, None) is None


def test_drill_span_covers_consecutive_phases():
    d = Drill("x")
    with d.phase("a"):
        time.sleep(0.02)
    with d.phase("b"):
        time.sleep(0.02)
    assert d.span("a", "b") >= d.phases["a"] + d.phases["b"] - 0.01


def test_segment_range_crosses_a_log_boundary():
    """A 4 GiB 'log' holds 256 segments of 16 MB, 4096 of 1 MB (the Patroni cluster's size)."""
    assert segment_range("0000000600000000000000FF", "000000060000000100000001", 16 << 20) == [
        "0000000600000000000000FF",
        "000000060000000100000000",
        "000000060000000100000001",
    ]
    assert segment_range("000000060000000000000FFE", "000000060000000100000000", 1 << 20) == [
        "000000060000000000000FFE",
        "000000060000000000000FFF",
        "000000060000000100000000",
    ]
    assert segment_range("0000000600000000000000FF", "000000060000000000000101", 1 << 20) == [
        "0000000600000000000000FF",
        "000000060000000000000100",
        "000000060000000000000101",
    ]


def _primary(
    failed: str,
    *,
    ready: bool = True,
    timeline: int = 4,
    segment_bytes: int = 16 << 20,
    history: str = "1\t0/3000000\tno recovery target specified\n"
    "2\t0/1A000100\tno recovery target specified\n"
    "3\t0/2D200000\tno recovery target specified\n",
):
    """A fake one-value SQL function answering the queries of stale_segment_blocking_archive."""
    import json

    def sql(query: str):
        if "wal_segment_size" in query:
            return segment_bytes
        if "pg_stat_archiver" in query:
            return json.dumps({"last_failed_wal": failed})
        if "pg_ls_archive_statusdir" in query:
            return 1 if ready else 0
        if "pg_control_checkpoint" in query:
            return timeline
        if "pg_read_file" in query:
            if history is None:  # timeline 1 has no history file: reading it is an error in PostgreSQL
                raise AssertionError("no history file on timeline 1")
            return history
        raise AssertionError(query)

    return sql


@pytest.mark.parametrize(
    "failed, ready, expected",
    [
        ("000000020000000000000022", True, "000000020000000000000022"),  # past timeline 2's end (0/1A...): stale
        ("00000002000000000000001A", True, None),  # the segment timeline 2 ended in: real WAL, not stale
        ("000000040000000000000030", True, None),  # current timeline: a real archiving failure
        ("000000020000000000000022", False, None),  # no longer waiting: not what blocks the archiver
        ("00000004.history", True, None),  # not a segment
        ("", True, None),  # nothing failed
    ],
)
def test_stale_segment_blocking_archive(failed, ready, expected):
    assert stale_segment_blocking_archive(_primary(failed, ready=ready)) == expected


@pytest.mark.parametrize(
    "failed, expected",
    [
        ("0000000200000000000001A1", "0000000200000000000001A1"),  # past timeline 2's end (0/1A000100 = 1 MB seg 0x1A0)
        ("0000000200000000000001A0", None),  # the segment timeline 2 ended in
        ("000000020000000000000022", None),  # 16 MB arithmetic would call this stale: it is not
    ],
)
def test_stale_segment_uses_the_clusters_segment_size(failed, expected):
    assert stale_segment_blocking_archive(_primary(failed, segment_bytes=1 << 20)) == expected


def test_stale_segment_on_the_first_timeline_is_a_real_failure():
    """On timeline 1 nothing lies past a timeline's end; there is no history file to read either."""
    assert stale_segment_blocking_archive(_primary("000000010000000000000022", timeline=1, history=None)) is None
