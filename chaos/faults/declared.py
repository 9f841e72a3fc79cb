"""What a test said it would break, enforced while it runs: `--dry-run` lists the declaration, and a fault that the
declaration does not cover refuses to inject, so the list a reviewer (or a cautious SRE) read is the truth.

A declaration is `Kind@target` strings (`Killed@patroni-leader`, `Isolated@etcd-member`, see
`topology.inventory.Inventory.expand` for the targets). While one is active, `Fault.__enter__` checks the kind and
`resolve()` checks every container the fault is about to touch against the roles the target expands to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Declaration:
    test: str
    faults: tuple[tuple[str, str], ...]  # (kind, target spec)

    def kinds(self) -> set[str]:
        return {k for k, _ in self.faults}

    def specs_for(self, kind: str) -> list[str]:
        return [t for k, t in self.faults if k == kind]


class UndeclaredFault(RuntimeError):
    """A fault the running test did not declare (its `faults` marker): nothing was injected."""


def parse(spec: str) -> tuple[str, str]:
    kind, sep, target = spec.partition("@")
    if not sep or not kind or not target:
        raise ValueError(f"fault declaration {spec!r} is not Kind@target (e.g. Killed@patroni-leader)")
    return kind, target


_declared: ContextVar[Declaration | None] = ContextVar("dpg_declared_faults", default=None)
_injecting: ContextVar[str | None] = ContextVar("dpg_injecting_fault", default=None)


@contextmanager
def declared(decl: Declaration | None) -> Iterator[None]:
    """Make `decl` the running test's declaration (None: no checks, e.g. outside pytest or an undeclared test)."""
    token = _declared.set(decl)
    try:
        yield
    finally:
        _declared.reset(token)


def check_kind(fault_type: type | str) -> str:
    """The declared kind a fault class counts as (itself or the fault kind it specialises, e.g. a test's own
    subclass of Paused counts as Paused); UndeclaredFault if the running test declared none of them."""
    names = [fault_type] if isinstance(fault_type, str) else [c.__name__ for c in fault_type.__mro__]
    kind = names[0]
    decl = _declared.get()
    if decl is None:
        return kind
    for name in names:
        if name in decl.kinds():
            return name
    raise UndeclaredFault(
        f"{decl.test} injects {kind}, which its @pytest.mark.faults(...) does not declare "
        f"(declared: {', '.join(f'{k}@{t}' for k, t in decl.faults) or 'nothing'}); nothing was injected"
    )


@contextmanager
def injecting(kind: str) -> Iterator[None]:
    token = _injecting.set(kind)
    try:
        yield
    finally:
        _injecting.reset(token)


def check_role(role: str | None, name: str) -> None:
    """Called by resolve() for a container a fault is about to touch (`role` None: not in the inventory)."""
    decl, kind = _declared.get(), _injecting.get()
    if decl is None or kind is None:
        return
    from topology.inventory import current

    inv = current()
    allowed: set[str] = set()
    testbed = False
    for spec in decl.specs_for(kind):
        testbed |= spec == "testbed"
        try:
            allowed |= set(inv.expand(spec)[0])
        except Exception:  # an unknown target is reported by the collection check, not here
            continue
    if (role is not None and role in allowed) or (role is None and testbed):
        return
    raise UndeclaredFault(
        f"{decl.test}: {kind} would touch {name} ({'role ' + role if role else 'not in the inventory'}), which "
        f"its declaration {', '.join(f'{kind}@{t}' for t in decl.specs_for(kind))} does not cover; nothing injected"
    )
