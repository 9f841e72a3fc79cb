"""What happens when a whole machine fails: crash, freeze, cut off, restarted for maintenance (pytest --hosts 3).

Each test: steady state -> inject a host fault -> observe (new leader, writes resume on the paths that survive) ->
heal (the host back as after a reboot) -> verify (healthy cluster, write gap within the fault's SLO on every path
that kept a route, no lost / phantom / duplicate write, no split brain). A router on the lost host has no path while
it is down: it is not measured against a bound, and the test reports when it answered again.
"""

from __future__ import annotations

import time

import allure
import pytest

from chaos.checkers.census import PrimaryCensus
from chaos.checkers.writes import write_gap
from chaos.faults import HostCrashed, HostFrozen, HostIsolated, HostsRestarted, Switchover
from chaos.history import until
from topology import evidence
from topology.health import assert_healthy
from topology.inventory import current
from topology.timeouts import TIMEOUTS

from ..failover.conftest import SLOBreach, SplitBrainFound, assert_failover_ok, async_loss_bound, data_safety_problems
from .conftest import host_of, surviving

pytestmark = [
    pytest.mark.multihost,
    pytest.mark.destructive,
    pytest.mark.faults("DynamicConfigChanged@patroni-api"),
    allure.parent_suite("multihost"),
    allure.suite("host failures"),
]


def lost_paths_note(lost: set[str]) -> str:
    kept = {ep.name for ep in surviving(lost)}
    gone = [ep for ep in ("haproxy", "traefik", "pgbouncer", "multihost") if ep not in kept]
    return f"entry points without a path while {', '.join(sorted(lost))} is down: {', '.join(gone) or 'none'}"


def lead_from(cluster, wanted) -> None:
    """Move the Patroni leader to a host for which `wanted(host)` holds, if it is not on one already."""
    if wanted(host_of(cluster.leader())):
        return
    with allure.step("move the leader first"):
        target = next(m for m in current().patroni_names if wanted(host_of(m)))
        with Switchover(candidate=target):
            pass
        assert_healthy(None, ["patroni", "pgbouncer", "traefik"], within=TIMEOUTS.rejoin)


def off_the_repository(host: str) -> bool:
    """A host that does not hold the pgBackRest repository: losing it leaves the archive reachable. With the leader
    on the repository's host, isolating it measured 28.2 s (promote request -> writes 5.1 s: one archive-get run
    out to DPG_RESTORE_TIMEOUT_S), against the 24 s of the lease-bound floor; the crash test covers that placement
    against its own bound."""
    return host != host_of("pgbackrest")


#: where the leader is when its host crashes: the placement decides what else dies with it (topology/multihost.py)
CRASH_PLACEMENTS = {
    # the leader's host holds a router but not the backup repository: the hard-fault floor
    "without the repository": ("host_crash", off_the_repository),
    # the leader's host also holds the pgBackRest repository: the new leader's promotion asks the archive for the
    # next timeline's history and the last segment, and the repository's host is gone (slo.yaml: + restore)
    "with the repository": ("host_crash_with_repository", lambda host: host == host_of("pgbackrest")),
}


@pytest.mark.lease_bound
@pytest.mark.faults("HostCrashed@host-of:patroni-leader", "Switchover@patroni-api")
@pytest.mark.parametrize("placement", list(CRASH_PLACEMENTS))
@allure.title("the Patroni leader's host crashes {placement} (leader + its etcd member at once): the others take over")
def test_leader_host_crash(experiment, cluster, placement):
    """CI, 2026-12-03: which host led was left to chance, and with the leader on the repository's host the new
    leader's promotion waited 61 s on three archive-gets to the dead host (80.8 s gap); both placements are now
    tested on purpose, each against its own bound."""
    fault, wanted = CRASH_PLACEMENTS[placement]
    lead_from(cluster, wanted)
    host = host_of(cluster.leader())
    evidence.attach_text("placement", lost_paths_note({host}))
    result = experiment(fault, entry_points=surviving({host})).run(
        lambda leader, h: HostCrashed(host_of(leader), history=h)
    )
    assert result.new_leader != result.old_leader
    assert_failover_ok(result, allow_loss=async_loss_bound())


@pytest.mark.lease_bound
@pytest.mark.faults("HostFrozen@host-of:patroni-leader", "Switchover@patroni-api")  # lead_from: a switchover
@allure.title("the Patroni leader's host frozen then resumed: no write accepted by a deposed leader")
@pytest.mark.xfail(
    raises=SplitBrainFound,
    strict=True,
    reason=(
        "measured 3 of 3 runs (2026-12-03): resumed, the deposed leader acknowledges new writes for ~2 s (14-21 "
        "writes through its own port) before Patroni demotes it; on one host the single-host freeze commits only the "
        "write in flight. Its etcd member and its host's DNS resumed with it, so its first DCS call after the thaw "
        "takes that long to fail. No watchdog in containers; synchronous_mode prevents the acknowledgement. Only "
        "this split-brain finding is expected: loss beyond maximum_lag_on_failover or an unhealthy cluster fails."
    ),
)
def test_leader_host_frozen(experiment, cluster):
    lead_from(cluster, off_the_repository)  # its own bound; the repository's host: test_leader_host_crash
    host = host_of(cluster.leader())
    result = experiment("host_freeze", entry_points=surviving({host}), pin_leader=True).run(
        lambda leader, h: HostFrozen(host_of(leader), history=h)
    )
    assert_failover_ok(result, allow_loss=async_loss_bound())


@pytest.mark.faults("Switchover@patroni-api", "HostCrashed@host-of:haproxy")
@pytest.mark.xfail(
    raises=SLOBreach,
    strict=False,
    reason=(
        "measured 2026-12-03 (2 of 38 runs here, docs/findings.md): losing the HAProxy host also kills an etcd "
        "follower; the leader, on another host, stopped just after retry_timeout (3 s) and took the key again "
        "(stop 3.3-3.6 s, promote 5.7-6.0 s, a new timeline): a 2.0-2.7 s gap on every surviving path. Most likely "
        "its DCS call went to the member on the dead host and overran retry_timeout; why Patroni's per-member "
        "timeout did not move it in time is open. Only an SLO breach is expected: a moved leader, a lost write or "
        "split brain still fail."
    ),
)
@allure.title("the host holding HAProxy crashes: the other routers carry on; HAProxy answers again after heal")
def test_haproxy_host_crash(experiment, cluster):
    haproxy_host = host_of("haproxy")
    lead_from(cluster, lambda host: host != haproxy_host)  # the question is the router, not a failover
    evidence.attach_text("placement", lost_paths_note({haproxy_host}))
    result = experiment("haproxy_host_crash", entry_points=surviving({haproxy_host}), expect_new_leader=False).run(
        lambda leader, h: HostCrashed(haproxy_host, history=h)
    )
    evidence.attach_text(
        "HAProxy", f"every stack healthy again (HAProxy answering) {result.healthy_after_s:.1f}s after the crash"
    )
    assert result.new_leader == result.old_leader, "losing the HAProxy host (a replica and a follower) moved the leader"
    assert_failover_ok(result)


@pytest.mark.lease_bound
@pytest.mark.faults("HostsPartitioned@host-of:patroni-leader", "HostsPartitioned@hosts", "Switchover@patroni-api")
@allure.title("minority/majority split of hosts, the leader in the minority: it demotes before the majority elects")
def test_leader_host_in_the_minority(experiment, cluster):
    lead_from(cluster, off_the_repository)  # with the repository cut off too, the promotion waits one archive-get
    host = host_of(cluster.leader())
    with PrimaryCensus() as census:
        t0 = time.monotonic()
        result = experiment("host_partition", entry_points=surviving({host}), pin_leader=True).run(
            lambda leader, h: HostIsolated(host_of(leader), history=h)
        )
    most, when, which = census.max_primaries(start=t0)
    evidence.attach_json("primary census", census.timeline())
    assert most <= 1, f"two primaries at once (census, every node asked directly): {sorted(which)} at {when}"
    assert_failover_ok(result, allow_loss=async_loss_bound())


class RollingRestartBreach(AssertionError):
    """A path that kept a route through every restart waited longer than the rolling restart's bound."""


UNDRAINED = (
    "measured 2026-12-03: restarting the host whose Patroni node leads, without moving the leader first, is a hard "
    "failover (29.3 s on every path). That host also runs the pgBackRest repository (host 3): dockerd stops both at "
    "once, the leader's fast shutdown waits for its archiver's last push to a repository that is going down, the "
    "before_stop hook gives up after 3 s, dockerd's 15 s shutdown timeout kills Patroni before it releases the key, "
    "and the replicas wait out the lease. Maintenance runbooks move the leader first (the drained case); the "
    "repository on its own host would avoid it too. Only this breach is expected: a lost write still fails."
)


@pytest.mark.slow
@pytest.mark.faults("HostsRestarted@hosts", "Switchover@patroni-api", "DynamicConfigChanged@patroni-api")
@pytest.mark.parametrize(
    "drain",
    [True, pytest.param(False, marks=pytest.mark.xfail(raises=RollingRestartBreach, strict=True, reason=UNDRAINED))],
    ids=["drained", "undrained"],
)
@allure.title("rolling restart of every host under writes (synchronous_mode): nothing acknowledged is lost")
def test_rolling_restart_loses_nothing(experiment, cluster, synchronous_mode, drain):
    """Every host holds a router, so only libpq multi-host keeps a path through all three restarts: its longest gap
    is held to the bound; every path's gaps per restart are attached (a router's own host restart is its outage).
    Drained: before a host goes down, the leader is moved off it (the operator's runbook)."""
    windows: list[tuple[str, float, float]] = []

    def move_leader_off(host: str) -> None:
        if host_of(cluster.leader()) == host:  # Patroni picks the candidate: in synchronous mode, the sync standby
            with Switchover():
                pass
            # The runbook waits for the switchover to *finish*: the key moves before the promotion ends. Stopping
            # the host at once (CI, 2026-12-03: host 3, which also holds the pgBackRest repository) left the new
            # leader 14.8 s between its promote request and accepting writes (lock 48.2 s, promote 48.8 s, writes
            # 63.6 s after the start): a 16 s gap on every path, libpq multi-host included. Most likely the
            # promotion's restore_command (the timeline-history lookup) waiting on the departing repository.
            assert_healthy(None, ["patroni", "pgbouncer", "traefik"], within=TIMEOUTS.rejoin)

    def settle(host: str) -> None:
        started = time.monotonic()
        assert_healthy(None, ["patroni", "pgbouncer", "traefik"], within=TIMEOUTS.rejoin)
        windows.append((host, started, time.monotonic()))

    result = experiment("rolling_restart", expect_new_leader=False).run(
        lambda leader, h: HostsRestarted(between=settle, before=move_leader_off if drain else None, history=h)
    )
    assert [h for h, _, _ in windows] == list(current().hosts), windows
    starts = [0.0] + [end for _, _, end in windows[:-1]]  # each restart's window: from the last one's end to its own
    per_restart = {
        host: {ep: write_gap(until(result.history, end), ep, after=start).longest_gap_ms for ep in result.gaps}
        for (host, _, end), start in zip(windows, starts, strict=True)
    }
    evidence.attach_json("longest write gap per restart (ms), by entry point", per_restart)
    problems = data_safety_problems(result.set_verdict, result.split_brain, allow_loss=0)
    assert not problems, " | ".join(problems)
    gap, slo = result.gaps["multihost"].longest_gap_ms, result.slos["multihost"]
    assert gap is not None, "libpq multi-host: fewer than 2 acknowledged writes"
    if gap > slo.bound_ms:
        raise RollingRestartBreach(f"libpq multi-host: write gap {gap:.0f} ms > {slo.bound_ms:.0f} ms ({slo.source})")
