"""The probes: a statement stuck on a frozen peer is cut off, a finished one never is; failed attempts back off."""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import pytest

from chaos.clients.probes import _SocketDeadline

pytestmark = pytest.mark.unit


def _fake_conn():
    """A stand-in for a psycopg connection: only `pgconn.socket` (the fd) is used; `peer` sees the shutdown."""
    ours, peer = socket.socketpair()
    return SimpleNamespace(pgconn=SimpleNamespace(socket=ours.fileno())), ours, peer


def test_deadline_shuts_the_socket_of_a_statement_that_overruns():
    conn, ours, peer = _fake_conn()
    with ours, peer:
        peer.settimeout(2)
        started = time.monotonic()
        with _SocketDeadline(conn, 0.1) as d:
            assert peer.recv(1) == b""  # EOF: our end was shut down by the deadline
        waited = time.monotonic() - started
        assert d.fired
        assert 0.09 <= waited < 1.0


def test_deadline_left_in_time_never_fires():
    conn, ours, peer = _fake_conn()
    with ours, peer:
        with _SocketDeadline(conn, 0.05) as d:
            pass
        time.sleep(0.15)
        assert not d.fired
        ours.sendall(b"x")  # the socket still works
        assert peer.recv(1) == b"x"


def test_many_deadlines_fire_in_order_of_their_due_time():
    pairs = [_fake_conn() for _ in range(3)]
    try:
        deadlines = [_SocketDeadline(conn, s) for (conn, _, _), s in zip(pairs, (0.3, 0.1, 0.2), strict=True)]
        for d in deadlines:
            d.__enter__()
        time.sleep(0.15)
        assert [d.fired for d in deadlines] == [False, True, False]
        time.sleep(0.25)
        assert [d.fired for d in deadlines] == [True, True, True]
    finally:
        for _, ours, peer in pairs:
            ours.close()
            peer.close()


def test_failed_attempts_back_off_to_the_cap():
    from chaos.clients.probes import ProbeSettings

    s = ProbeSettings(interval=0.02, retry_cap=0.1)
    assert [s.pause_after(n) for n in range(6)] == [0.02, 0.02, 0.04, 0.08, 0.1, 0.1]
    assert ProbeSettings(interval=0.02, retry_cap=0.01).pause_after(3) == 0.02  # never faster than the interval
