"""topology.etcd.EtcdGateway against stand-in etcd members (HTTP servers speaking the v3 JSON gateway's shape)."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import socketserver
import threading
import time

import pytest

from topology import inventory
from topology.etcd import EtcdGateway, EtcdUnavailable
from topology.names import ETCD_MEMBERS

pytestmark = pytest.mark.unit


class _Member(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def _member(kv: dict[str, str], *, healthy: bool = True, delay: float = 0.0, status: int = 200):
    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self, code: int, body: dict) -> None:
            time.sleep(delay)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = base64.b64decode(req["key"]).decode()
            kvs = [{"key": req["key"], "value": base64.b64encode(kv[key].encode()).decode()}] if key in kv else []
            self._reply(status, {"header": {}, "kvs": kvs} if kvs else {"header": {}})

        def do_GET(self):
            self._reply(200 if healthy else 503, {"health": "true" if healthy else "false", "reason": ""})

        def log_message(self, *args):
            pass

    server = _Member(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def members(monkeypatch):
    servers = []
    held = contextlib.ExitStack()

    def start(*specs: dict) -> None:
        for i, spec in enumerate(specs, start=1):
            server = _member(**spec)
            servers.append(server)
            monkeypatch.setenv(f"DPG_PORT_ETCD_{i}", str(server.server_address[1]))
        held.enter_context(inventory.using(inventory.embedded()))  # the embedded topology, on these ports

    yield start
    held.close()
    for s in servers:
        s.shutdown()
        s.server_close()


def test_reads_a_key_and_an_absent_key(members):
    members(*[{"kv": {"/service/dpg/leader": "patroni-2"}}] * 3)
    gw = EtcdGateway()
    assert gw.get("/service/dpg/leader") == "patroni-2"
    assert gw.get("/service/dpg/none") is None


def test_a_member_without_quorum_is_skipped_and_the_answering_one_asked_first(members):
    members({"kv": {}, "delay": 0.6}, {"kv": {"/k": "v"}, "status": 503}, {"kv": {"/k": "v"}})
    gw = EtcdGateway(timeout=0.3)
    started = time.monotonic()
    assert gw.get("/k") == "v"  # etcd-1 timed out, etcd-2 answered 503, etcd-3 answered
    first = time.monotonic() - started
    started = time.monotonic()
    assert gw.get("/k") == "v"
    assert time.monotonic() - started < first  # etcd-3 is asked first now: no timeout on the dead member


def test_no_member_answering_reads_as_no_value(members, monkeypatch):
    members(*[{"kv": {"/k": "v"}, "status": 503}] * 3)
    assert EtcdGateway().get("/k") is None


def test_health_is_etcds_own_verdict(members):
    members({"kv": {}}, {"kv": {}, "healthy": False}, {"kv": {}, "delay": 3})
    gw = EtcdGateway(timeout=0.5)
    assert [gw.healthy(m) for m in ETCD_MEMBERS] == [True, False, False]


def test_no_member_answering_is_not_an_absent_key(members):
    members(*[{"kv": {"/k": "v"}, "status": 503}] * 3)
    with pytest.raises(EtcdUnavailable):
        EtcdGateway().read("/k")
    members({"kv": {}}, {"kv": {}}, {"kv": {}})
    assert EtcdGateway().read("/k") is None  # absent: answered, no value


def test_leader_watcher_records_no_change_while_etcd_does_not_answer():
    """An undisturbed leader key read through an etcd election must not show a 'None' in between."""
    from chaos.experiments.failover import LeaderWatcher
    from chaos.history import History

    answers = iter(["patroni-1", EtcdUnavailable("electing"), EtcdUnavailable("electing"), "patroni-1"])

    class Cluster:
        def leader_in_dcs(self, *, strict=False):
            try:
                answer = next(answers)
            except StopIteration:
                return "patroni-1"
            if isinstance(answer, Exception):
                raise answer
            return answer

    watcher = LeaderWatcher(Cluster(), History(), every=0.01)
    with watcher:
        time.sleep(0.2)
    assert [leader for _, leader in watcher.changes] == ["patroni-1"]
