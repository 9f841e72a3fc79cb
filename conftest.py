"""pytest wiring: session fixtures that start only the stacks the selected tests need, safe under xdist,
an autouse fixture that heals every fault after each test, and Allure environment/categories files.

    --keep-topology  (or DPG_KEEP_TOPOLOGY=1)  leave what this run started running afterwards
    --target FILE    (or DPG_TARGET=FILE)      test a deployment the suite did not start (topology.pytest_target)
    --dry-run                                  list each selected test's faults and the containers they touch
    stacks that were already running and healthy before the run are reused and never torn down; under --target
    nothing is ever started or torn down (only faults touch the target, and they heal).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from filelock import FileLock

from chaos.faults import journal
from topology import health, lifecycle, probe_schema
from topology.errors import TopologyError
from topology.inventory import current, engines
from topology.names import TARGET_PROBE_SCHEMA
from topology.stacks import resolve

pytest_plugins = ["reports.pytest_allure", "topology.pytest_guard", "chaos.experiments.pytest_faults"]


def pytest_configure(config):
    """Run the harness (probes, watchers, checkers) below the cluster's priority.

    On this 2-core machine the probes share the CPU with the cluster they measure, and with cgroup v1 every
    thread outside Docker weighs as much as all containers together. A starved primary or candidate makes a
    failover slower than the cluster is; a niced probe can only report a gap as long or longer, never shorter.
    DPG_HARNESS_NICE=0 keeps the default priority. Threads started later (the probes) inherit it."""
    from chaos.checkers.slo import member_probe_timeout_ms
    from chaos.clients.probes import retry_cap_from_env
    from topology.errors import TopologyError

    try:
        retry_cap_from_env()
        member_probe_timeout_ms()  # bad harness settings: one line at start, not one failure per test
    except TopologyError as exc:
        raise pytest.UsageError(str(exc)) from None
    raw = os.environ.get("DPG_HARNESS_NICE", "10")
    try:
        increment = int(raw)
    except ValueError:
        raise pytest.UsageError(f"DPG_HARNESS_NICE={raw!r} is not an integer") from None
    if increment > 0 and os.getpriority(os.PRIO_PROCESS, 0) < increment:
        os.nice(increment - os.getpriority(os.PRIO_PROCESS, 0))


def pytest_collection_modifyitems(session, config, items):
    """The unit tests first (stable otherwise): they take a minute and need no Docker, so a run that runs out of
    its time budget or breaks its topology still says whether the code's own checks pass."""
    items.sort(key=lambda item: 0 if "/suites/unit/" in f"/{item.nodeid}" else 1)


def pytest_addoption(parser):
    parser.addoption(
        "--keep-topology",
        action="store_true",
        default=os.environ.get("DPG_KEEP_TOPOLOGY") == "1",
        help="do not tear down the stacks this run started",
    )
    # suites/consistency: the mixed-fault run (Jepsen's combined nemesis), 3 minutes in CI, longer for a soak
    parser.addoption("--nemesis-seconds", type=float, default=180.0, help="length of the mixed-fault schedule (s)")
    parser.addoption("--nemesis-seed", type=int, default=17, help="seed of the mixed-fault schedule")


class Topology:
    """Starts stacks on demand, once across xdist workers (FileLock), and tears down what it started."""

    def __init__(self, shared_dir: Path, keep: bool):
        self.lock = FileLock(str(shared_dir / "dpg-topology.lock"))
        self.state_file = shared_dir / "dpg-topology.json"
        self.keep = keep
        self._client = None
        self.probe_tables = False

    @property
    def client(self):
        """The Docker engine of the deployment's first Patroni member (the local one for the embedded topology);
        faults and gates reach every other container through the inventory's engines."""
        if self._client is None:
            inv = current()
            try:
                self._client = engines().client(inv.role(inv.patroni_names[0]).engine)
            except TopologyError as err:
                pytest.exit(f"topology: {err}", returncode=2)
        return self._client

    def _state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {"users": 0, "started": []}

    def _save(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state))

    def join(self) -> None:
        with self.lock:
            state = self._state()
            state["users"] += 1
            self._save(state)

    def ensure(self, names: tuple[str, ...]) -> dict[str, str]:
        """Make the stacks (and what they need) healthy; returns {stack: skip reason} for absent images."""
        if current().is_target:
            return self._ensure_target(names)
        if current().kind == "multihost":
            return self._ensure_multihost(names)
        with self.lock:
            state = self._state()
            running = set(health.running_stacks(self.client))
            try:
                todo = [s.name for s in resolve(list(names))]
                skipped = {n: r for n in todo if (r := lifecycle.skip_reason(self.client, n))}
                missing = [n for n in todo if n not in running and n not in skipped]
                if missing:
                    lifecycle.up(missing)
                    state["started"] = sorted(set(state["started"]) | set(missing))
                    self._save(state)
                health.wait_healthy(self.client, [n for n in todo if n not in skipped])
            except TopologyError as err:
                pytest.fail(f"topology: {err}", pytrace=False)
            return skipped

    def _ensure_target(self, names: tuple[str, ...]) -> dict[str, str]:
        """A target is never started: a stack it does not describe is a skip, one it describes must be healthy."""
        inv = current()
        todo = [s.name for s in resolve(list(names))]
        skipped = {
            n: f"target {inv.name} describes no {n} (needs {', '.join(inv.missing_for(n))})"
            for n in todo
            if n not in inv.stacks()
        }
        try:
            self.client  # noqa: B018 - an unreachable engine ends the run at once, with one line
            health.wait_healthy(self.client, [n for n in todo if n not in skipped])
            if "patroni" in todo and not self.probe_tables:
                with self.lock:  # the probe tables: a schema of ours, dropped when the run ends
                    schema_id = f"probe-schema-{os.getpid()}"
                    journal.note(
                        "inject",
                        schema_id,
                        "ProbeSchema",
                        f"probe schema {TARGET_PROBE_SCHEMA}",
                        {"schema": TARGET_PROBE_SCHEMA},
                    )  # a killed run's schema: `chaos heal` drops it
                    probe_schema.ensure(TARGET_PROBE_SCHEMA)
                    state = self._state()
                    state["probe_schema"], state["probe_schema_id"] = TARGET_PROBE_SCHEMA, schema_id
                    self._save(state)
                self.probe_tables = True
        except TopologyError as err:
            pytest.fail(f"topology: {err}", pytrace=False)
        return skipped

    def _ensure_multihost(self, names: tuple[str, ...]) -> dict[str, str]:
        """The multi-host deployment is started as a whole (minutes) when no host of ours runs, torn down at the end
        if this run started it; a stack it does not carry (vector, redis, ...) is a skip."""
        from topology import multihost

        inv = current()
        with self.lock:
            state = self._state()
            try:
                if not multihost.running():
                    multihost.up(multihost.count())
                    state["started"] = sorted(set(state["started"]) | {"multihost"})
                    self._save(state)
                todo = [s.name for s in resolve(list(names))]
                skipped = {n: f"the multi-host topology carries no {n} (single-host stack)" for n in todo
                           if n not in inv.stacks()}  # fmt: skip
                health.wait_healthy(self.client, [n for n in todo if n not in skipped])
            except TopologyError as err:
                pytest.fail(f"topology: {err}", pytrace=False)
        return skipped

    def leave(self) -> None:
        with self.lock:
            state = self._state()
            state["users"] -= 1
            self._save(state)
            if state["users"] == 0 and state.get("probe_schema") and current().is_target:
                try:
                    probe_schema.drop(state["probe_schema"])
                    journal.note(
                        "healed", state["probe_schema_id"], "ProbeSchema", f"probe schema {state['probe_schema']}"
                    )
                except Exception as exc:  # the target may be down: `python -m chaos heal` drops it later
                    print(f"dpg-chaos: could not drop the probe schema {state['probe_schema']}: {exc}")
                state.pop("probe_schema")
                self._save(state)
            if state["users"] > 0 or self.keep or not state["started"] or current().is_target:
                return
            if current().kind == "multihost":
                from topology import multihost

                multihost.down()
                self.state_file.unlink(missing_ok=True)
                return
            lifecycle.down_started(state["started"])
            self.state_file.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def topology(request, tmp_path_factory):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    shared = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()
    topo = Topology(shared, keep=request.config.getoption("--keep-topology"))
    topo.join()
    yield topo
    topo.leave()


def _stack_fixture(*names: str):
    @pytest.fixture(scope="session")
    def fixture(topology):
        skipped = topology.ensure(names)
        wanted = [n for n in names if n in skipped]
        if wanted:
            pytest.skip(skipped[wanted[0]])
        return topology.client

    return fixture


patroni_stack = _stack_fixture("patroni")
write_paths_stacks = _stack_fixture("patroni", "pgbouncer", "traefik")
vector_stack = _stack_fixture("vector")
redis_stack = _stack_fixture("redis")
toxiproxy_stack = _stack_fixture("toxiproxy")
monitoring_stack = _stack_fixture("monitoring")
citus_stack = _stack_fixture("citus")
grafana_stack = _stack_fixture("grafana")


@pytest.fixture(autouse=True)
def heal_everything():
    """Jepsen's teardown!: whatever a test left injected is healed before the next one starts."""
    yield
    from chaos.faults import heal_all

    heal_all(reason="test teardown", raise_errors=False)
