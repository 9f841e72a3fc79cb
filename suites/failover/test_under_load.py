"""Chaos under load: a planned switchover while Locust drives reads and writes through HAProxy.

The failover suite's probes write once every 20 ms; here the cluster is busy (closed-loop Locust users, 80/20
point reads / writes, chaos/load) when the leader changes. Reported on the timeline: failed requests and the
latency spike. Asserted, and nothing more: a clean steady state before the fault, failures confined to a
window no longer than the switchover's SLO bound (suites/failover/slo.yaml), the longest pause between
acknowledged writes within that bound, no failure at the end of the run, and a healthy cluster afterwards.
"""
from __future__ import annotations

import importlib.util
import tempfile
import threading
import time
from pathlib import Path

import allure
import pytest

from chaos.faults import Switchover
from chaos.load import locust_run, schema, targets
from chaos.load.under_load import impact, windows
from chaos.slo import bound
from reports import evidence
from reports.timeline import render_load_timeline
from topology.health import assert_healthy
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

from .conftest import SLOBreach

# Locust runs as a subprocess: importing it here would gevent-monkey-patch pytest's process (ssl recursion)
LOCUST_MISSING = importlib.util.find_spec("locust") is None

pytestmark = [pytest.mark.destructive, pytest.mark.slow, allure.parent_suite("failover"),
              allure.suite("under load"),
              pytest.mark.skipif(LOCUST_MISSING, reason="Locust is an optional extra: pip install -e '.[load]'")]

ENTRY_POINT = "haproxy"
USERS = 8
STEADY_S = 8.0          # clean load before the fault
AFTER_S = 15.0          # at least this much load after the new leader is visible, or recovery is not judged
TAIL_S = 5.0            # the last seconds of the run must be free of failures
RUN_S = 45              # Locust's --run-time: steady + switchover (~2-10 s under load) + after, with room


@allure.title("switchover while Locust drives HAProxy: failures confined to the SLO window, cluster healthy")
def test_switchover_under_locust_load(write_paths_stacks):
    client = write_paths_stacks
    stacks = ["patroni", "pgbouncer", "traefik"]
    slo = bound("switchover", ENTRY_POINT)
    with allure.step("steady state: cluster healthy, bench tables ready"):
        assert_healthy(client, stacks)
        schema.prepare(targets.endpoint("direct"))
    work = Path(tempfile.mkdtemp(prefix="dpg-under-load-"))
    log = work / "requests.csv"
    result: dict = {}

    def drive() -> None:
        try:
            result["stats"] = locust_run.run("MixUser", ENTRY_POINT, users=USERS, seconds=RUN_S, out_dir=work,
                                             request_log=log)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            result["error"] = exc

    loader = threading.Thread(target=drive, name="locust", daemon=True)
    marks: list[tuple[float, str]] = []
    with allure.step(f"Locust: {USERS} users, MixUser (80/20) via {ENTRY_POINT}, {RUN_S} s"):
        loader.start()
        first = wait_for(lambda: (reqs := locust_run.read_request_log(log)) and reqs[0].wall,
                         within=TIMEOUTS.stack_up / 4, what="Locust's first requests")
        wait_for(lambda: time.time() >= first + STEADY_S, within=STEADY_S + 5, what="steady load", every=0.2)
    with allure.step("inject: Patroni switchover under load"):
        inject_wall = time.time()
        marks.append((inject_wall, "inject switchover"))
        with Switchover(wait=TIMEOUTS.switchover + 20) as sw:
            marks.append((time.time(), f"leader {sw.old_leader} → {sw.new_leader}"))
    with allure.step("let the load run out, then read what every request saw"):
        loader.join(timeout=RUN_S + locust_run.GRACE_S + 30)
        assert not loader.is_alive(), "Locust did not stop within its bound"
        assert "error" not in result, f"Locust failed: {result.get('error')}"
        requests = locust_run.read_request_log(log)
    with allure.step("final health gate"):
        assert_healthy(client, stacks, within=TIMEOUTS.rejoin)
    schema.clear_events(targets.endpoint("direct"))

    t0 = requests[0].wall
    found = impact(requests, inject_wall, tail_s=TAIL_S)
    stats = result["stats"]
    verdict = found.to_dict() | {"entry_point": ENTRY_POINT, "users": USERS, "slo_ms": slo.bound_ms,
                                 "slo_source": slo.source, "locust_ops_per_s": stats.ops_per_s,
                                 "old_leader": sw.old_leader, "new_leader": sw.new_leader,
                                 "switchover_s": marks[1][0] - inject_wall}
    png = render_load_timeline(windows(requests, t0, width=0.25), work / "under-load.png",
                               title=f"switchover under load: {USERS} Locust users via {ENTRY_POINT}",
                               marks=[(w - t0, label) for w, label in marks], width_s=0.25, slo_ms=slo.bound_ms)
    allure.attach.file(str(png), name="switchover under load timeline", attachment_type=allure.attachment_type.PNG)
    allure.attach.file(str(work / f"locust-{ENTRY_POINT}-MixUser_stats.csv"), name="locust stats",
                       attachment_type=allure.attachment_type.CSV)

    problems, breaches = [], []
    if found.failed_before:
        problems.append(f"{found.failed_before} request(s) failed before the fault (no steady state)")
    if found.failure_window_ms is not None and found.failure_window_ms > slo.bound_ms:
        breaches.append(f"failures spread over {found.failure_window_ms:.0f} ms > SLO {slo.bound_ms:.0f} ms")
    if found.write_gap_ms is None:
        problems.append("no write gap measurable")
    elif found.write_gap_ms > slo.bound_ms:
        breaches.append(f"longest write gap {found.write_gap_ms:.0f} ms > SLO {slo.bound_ms:.0f} ms ({slo.source})")
    if requests[-1].wall < marks[1][0] + AFTER_S:
        problems.append(f"load ended {requests[-1].wall - marks[1][0]:.1f} s after the new leader (< {AFTER_S:g} s): "
                        "recovery not observed long enough")
    if found.failed_tail:
        problems.append(f"{found.failed_tail} failure(s) in the last {TAIL_S:g} s: not recovered")
    verdict["passed"] = not problems and not breaches
    evidence.attach_json("under-load verdict", verdict)
    evidence.record_measurement("load_failover", fault="switchover", **verdict)
    assert not problems, "switchover under load: " + " | ".join(problems + breaches)
    if breaches:
        raise SLOBreach("switchover under load: " + " | ".join(breaches))
