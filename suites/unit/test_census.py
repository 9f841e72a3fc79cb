"""The primary census must see two primaries when two nodes answer "primary" at the same time, and must not
invent one from stale or failed answers (the etcd suite's "never two primaries" rests on it)."""

from __future__ import annotations

import pytest

from chaos.checkers.census import PrimaryCensus, Sample

pytestmark = pytest.mark.unit


def census(*samples: Sample) -> PrimaryCensus:
    c = PrimaryCensus(nodes=())
    c.samples.extend(samples)
    return c


def test_two_overlapping_primaries_are_counted():
    c = census(Sample("a", 0.0, True), Sample("b", 0.1, False), Sample("b", 0.5, True), Sample("a", 0.6, True))
    n, at, nodes = c.max_primaries()
    assert (n, nodes) == (2, {"a", "b"}) and at == 0.5


def test_a_demoted_node_is_not_counted_after_its_demotion():
    c = census(Sample("a", 0.0, True), Sample("a", 0.3, False), Sample("b", 0.5, True))
    assert c.max_primaries()[0] == 1


def test_stale_and_failed_answers_do_not_count_as_primary():
    # a's last "primary" answer is 2 s old when b promotes; then a stops answering at all
    c = census(Sample("a", 0.0, True), Sample("b", 2.0, True), Sample("a", 2.1, None))
    assert c.max_primaries()[0] == 1
    assert c.primaries_at(2.2) == {"b"}


def test_first_time_without_primary():
    c = census(Sample("a", 0.0, True), Sample("a", 1.0, True), Sample("a", 2.0, False), Sample("b", 2.5, False))
    assert c.first_time_without_primary(after=0.5) == 2.0
    assert census(Sample("a", 0.0, True), Sample("a", 1.0, True)).first_time_without_primary(0.5) is None
