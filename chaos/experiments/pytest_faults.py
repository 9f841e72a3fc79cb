"""pytest plugin: every destructive test declares what it breaks, and the run keeps it to that.

    @pytest.mark.faults("Killed@patroni-leader")
    def test_hard_kill_of_leader(...): ...

- Collection: each `faults` marker names fault kinds of `chaos.faults.FAULT_KINDS` and targets of
  `Inventory.expand`; a destructive test without one is a collection error (an undeclared test could not be
  listed by --dry-run, so it may not run at all).
- `--dry-run` (Pumba's): per selected test, the faults it would inject and the containers and engines each
  may touch in the deployment under test; then the run ends, nothing injected, nothing started.
- Safety catch: against a target whose inventory does not say `faults: allowed`, a run that selected
  destructive tests refuses to start (one line, exit status 2).
- While a test runs, `chaos.faults.declared` refuses any fault its declaration does not cover; a fault that
  cannot run on a target (a missing tool, no NET_ADMIN and no helper) is a skip with that reason.
"""

from __future__ import annotations

import pytest

from chaos.faults import FAULT_KINDS, FaultUnsupported, declared
from topology.errors import TopologyError
from topology.inventory import current, embedded, engines

#: Declarable actions that are not Fault classes: a DR drill's destruction and rebuild (chaos.experiments.disasters,
#: never against a target) and a test that holds every slot of a pool (no container touched).
PSEUDO_KINDS = {
    "Disaster": "destroys containers and volumes, rebuilds them from backups",
    "Saturated": "holds every slot of a pool",
}
KIND_NAMES = {k.__name__ for k in FAULT_KINDS} | set(PSEUDO_KINDS)


def declaration_of(item) -> declared.Declaration | None:
    """The item's declaration (all its `faults` markers, module-level ones included); None if not destructive."""
    marks = list(item.iter_markers("faults"))
    if not marks and item.get_closest_marker("destructive") is None:
        return None
    specs = [spec for m in marks for spec in m.args]
    return declared.Declaration(item.nodeid, tuple(declared.parse(s) for s in specs))


def _check_declaration(item) -> str | None:
    """A problem with the item's declaration, as one line (None: fine)."""
    try:
        decl = declaration_of(item)
    except ValueError as exc:
        return f"{item.nodeid}: {exc}"
    if decl is None:
        return None
    if not decl.faults and not list(item.iter_markers("faults")):
        return f"{item.nodeid}: destructive but declares no faults (@pytest.mark.faults('Kind@target', ...))"
    vocabulary = embedded()
    for kind, target in decl.faults:
        if kind not in KIND_NAMES:
            return f"{item.nodeid}: unknown fault kind {kind!r} (known: {', '.join(sorted(KIND_NAMES))})"
        try:
            vocabulary.expand(target)
        except TopologyError:
            if target not in current().roles:
                return f"{item.nodeid}: unknown fault target {target!r} in {kind}@{target}"
    return None


def pytest_collection_modifyitems(session, config, items):
    problems = [p for item in items if (p := _check_declaration(item))]
    if problems:
        raise pytest.UsageError("fault declarations:\n  " + "\n  ".join(problems))


def pytest_collection_finish(session):
    config = session.config
    items = session.items
    inv = current()
    destructive = [i for i in items if i.get_closest_marker("destructive") is not None]
    if config.getoption("--dry-run"):
        _print_dry_run(config, items)
        pytest.exit("dry run: nothing injected, nothing started", returncode=0)
    if inv.is_target and destructive and not inv.faults_allowed:
        pytest.exit(
            f"target {inv.name} ({inv.source}) does not say `faults: allowed`: refusing to start "
            f"{len(destructive)} destructive test(s); deselect them (-m 'not destructive') or set the safety "
            "catch in the inventory",
            returncode=2,
        )


def _where(role: str) -> str:
    inv = current()
    r = inv.role(role)
    engine = inv.engines[r.engine]
    try:
        c = engines().container(role)
        return f"{role} [container {c.name} ({c.short_id}), engine {engine.describe()}]"
    except TopologyError as exc:
        if not inv.is_target:  # the embedded topology is started by the run itself
            return f"{role} [container {r.selector.describe()}, engine {engine.describe()}: not running yet]"
        return f"{role} [{r.selector.describe()} on engine {engine.describe()}: not resolved: {exc}]"


def _print_dry_run(config, items) -> None:
    inv = current()
    tw = config.get_terminal_writer()
    catch = "allowed" if inv.faults_allowed else "FORBIDDEN"
    tw.line(f"dry run against {inv.name} ({inv.kind}, {inv.source}); faults {catch}")
    for item in items:
        decl = declaration_of(item)
        if decl is None:
            tw.line(f"{item.nodeid}: no fault (reads only)")
            continue
        tw.line(f"{item.nodeid}:" + ("" if decl.faults else " declares no fault (exclusive, reads only)"))
        for kind, target in decl.faults:
            try:
                roles, when = inv.expand(target)
            except TopologyError:
                tw.line(f"  {kind} @ {target}: not described by this inventory (the test skips)")
                continue
            head = f"  {kind} @ {target}" + (f" ({when})" if when else "")
            tw.line(head + (":" if roles else ""))
            for role in roles:
                tw.line(f"      {_where(role)}")


@pytest.fixture(autouse=True)
def _declared_faults(request):
    """Hold the running test to its declaration (destructive tests; others inject nothing)."""
    decl = declaration_of(request.node)
    with declared.declared(decl):
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    except FaultUnsupported as exc:
        pytest.skip(str(exc))
