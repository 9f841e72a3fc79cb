"""pytest plugin: a broken topology costs one test, not the rest of the run.

Why: in CI a destructive test once left the Patroni cluster unhealthy, and every later test then spent its
full (CI-doubled) health-gate budget failing, until the run was killed at its 90-minute limit with no report.

- After a destructive test fails or errors, the next test that uses the topology first checks every running
  stack of ours (a short budget); a stack still unhealthy is recreated (down + up, seeded again) — never under
  --target: a target's problems are reported and the tests that need it fail at once instead — at most
  DPG_MAX_REPAIRS times per run (default 3). Each repair is attached to that test in Allure and listed in the
  terminal summary, so it is never silent. Once the repairs are spent, tests that use the topology fail at
  once with the problems instead of each waiting out its own timeouts.
- DPG_SESSION_BUDGET_S (default: no budget; .ci/run sets one): once the run has used it, every remaining
  test that needs the topology fails at setup saying so, which leaves time for the report and the teardown.
"""

from __future__ import annotations

import os
import time

import pytest

from . import health, images, lifecycle
from .docker_env import managed_containers
from .errors import TopologyError
from .inventory import current
from .stacks import ORDER
from .timeouts import TIMEOUTS
from .waiting import WaitTimeout


class _GuardState:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.suspect: str | None = None  # the destructive test that failed last, not yet checked after
        self.repairs: list[str] = []  # one line per repair, for the summary
        self.broken: str | None = None  # problems left once the repairs were spent
        self.tails: list[str] = []  # last log lines of the containers of each repaired stack


STATE = _GuardState()


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(float(raw)) if raw.strip() else default
    except ValueError:
        raise pytest.UsageError(f"{name}={raw!r} is not a number") from None


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (fixtures read `rep_call`); remember a failed destructive test."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
    if rep.failed and item.get_closest_marker("destructive") is not None:
        STATE.suspect = item.nodeid


def sick_stacks(client) -> dict[str, str]:
    """{stack: problems} of the running stacks of ours that do not get healthy within `repair_check`."""
    sick = {}
    for stack in health.running_stacks(client):
        try:
            health.wait_healthy(client, [stack], within=TIMEOUTS.repair_check)
        except WaitTimeout as err:
            sick[stack] = str(err)
    return sick


def evidence_before_repair(client, stack: str, tail: int = 300) -> dict[str, str]:
    """The logs of a sick stack's containers: recreating it destroys them, and they say why it was sick."""
    logs = {}
    for c in managed_containers(client, stack):
        try:
            logs[c.name] = c.logs(tail=tail).decode(errors="replace")
        except Exception as exc:
            logs[c.name] = f"(no logs: {exc})"
    return logs


def repair(client, sick: dict[str, str], after: str) -> list[str]:
    """Recreate the sick stacks in start order, keeping their logs first; returns one line per stack."""
    import allure

    from topology import evidence

    done = []
    for stack in [s for s in ORDER if s in sick]:
        logs = evidence_before_repair(client, stack)
        for name, text in logs.items():
            allure.attach(text, name=f"log {name} before the repair", attachment_type=allure.attachment_type.TEXT)
        kept = evidence.OUT_DIR / "repairs" / f"{stack}-{time.strftime('%Y%m%dT%H%M%S')}.log"
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text("".join(f"===== {n}\n{t}\n" for n, t in logs.items()))
        STATE.tails.extend(f"  {n}: {line}" for n, t in logs.items() for line in t.splitlines()[-8:])
        STATE.tails.append(f"  (full logs: {kept})")
        t0 = time.monotonic()
        lifecycle.down([stack])
        lifecycle.up([stack], build=False)
        done.append(
            f"{stack} recreated in {time.monotonic() - t0:.0f}s after {after} left it unhealthy: {sick[stack][:300]}"
        )
    return done


@pytest.fixture(autouse=True)
def topology_guard(request):
    """Runs before every test: the run's time budget, then the check/repair after a failed destructive test."""
    budget = _int_env("DPG_SESSION_BUDGET_S", 0)
    used = time.monotonic() - STATE.started
    needs_docker = "topology" in request.fixturenames or request.node.get_closest_marker("destructive")
    if budget and used > budget and needs_docker:  # a unit test costs nothing: it always runs
        pytest.fail(
            f"not run: this run's time budget DPG_SESSION_BUDGET_S={budget}s is spent ({used:.0f}s)", pytrace=False
        )
    if "topology" not in request.fixturenames:
        yield
        return
    if STATE.broken:
        pytest.fail(
            f"not run: the topology stayed unhealthy after {len(STATE.repairs)} repair(s): {STATE.broken}",
            pytrace=False,
        )
    if STATE.suspect:
        after, STATE.suspect = STATE.suspect, None
        _check_and_repair(after)
    yield


def _check_and_repair(after: str) -> None:
    import allure

    try:
        client = images.docker_client()
        sick = sick_stacks(client)
        if not sick:
            return
        if not current().rebuildable:  # a target (or a multi-host deployment) is never recreated stack by stack
            STATE.broken = "; ".join(f"{s}: {p[:200]}" for s, p in sick.items())
            allure.attach(
                STATE.broken,
                name=f"{current().kind} {current().name} unhealthy (not repaired: never recreated stack by stack)",
                attachment_type=allure.attachment_type.TEXT,
            )
            pytest.fail(
                f"not run: {current().kind} {current().name} is unhealthy after {after}, and it is never recreated "
                f"stack by stack: {STATE.broken}",
                pytrace=False,
            )
        if len(STATE.repairs) >= _int_env("DPG_MAX_REPAIRS", 3):
            STATE.broken = "; ".join(f"{s}: {p[:200]}" for s, p in sick.items())
            pytest.fail(
                f"not run: the topology is unhealthy after {after} and the repairs "
                f"(DPG_MAX_REPAIRS) are spent: {STATE.broken}",
                pytrace=False,
            )
        done = repair(client, sick, after)
    except TopologyError as err:
        STATE.broken = str(err)
        pytest.fail(f"not run: repairing the topology after {after} failed: {err}", pytrace=False)
    STATE.repairs.extend(done)
    allure.attach(
        "\n".join(done), name="topology repaired before this test", attachment_type=allure.attachment_type.TEXT
    )


def pytest_terminal_summary(terminalreporter):
    if STATE.repairs or STATE.broken:
        terminalreporter.section("topology repairs (a failed destructive test left a stack unhealthy)")
        for line in STATE.repairs:
            terminalreporter.write_line(line)
        if STATE.tails:
            terminalreporter.write_line("last log lines before the repair(s):")
            for line in STATE.tails:
                terminalreporter.write_line(line[:220])
        if STATE.broken:
            terminalreporter.write_line(f"still unhealthy, later tests not run: {STATE.broken}")
