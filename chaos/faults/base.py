"""The `Fault` contract: inject on enter, ALWAYS heal on exit, and leave a trail.

A fault is a context manager (Jepsen's nemesis `invoke!`/`teardown!` in one object):

    with Paused("dpg-patroni-1", history=h):
        ...                        # observe the cluster while the leader is frozen
    # healed here, even if the body raised

* `__enter__` registers the fault in the process-wide registry *before* injecting, so a SIGINT/SIGTERM
  or an interpreter exit in the middle of `inject()` still heals it; if `inject()` raises half-way,
  `heal()` runs before the exception propagates (testcontainers' `__enter__` pattern).
* `__exit__` calls `heal()` in `finally` semantics, then unregisters. Exceptions of the body propagate.
* `heal()` is idempotent and safe when nothing is broken: it looks at the world, not at a flag.
* Every inject/heal is logged on `dpg.chaos` with a UTC timestamp, appended to `fault.events`,
  and marked on the optional `history` (anything with `.mark(action, target, detail="")`).
"""

from __future__ import annotations

import logging
import secrets
import signal as _signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, Union

from . import declared, journal, registry

if TYPE_CHECKING:  # pragma: no cover
    from docker import DockerClient
    from docker.models.containers import Container

log = logging.getLogger("dpg.chaos")

#: A fault target: a container name (`dpg-patroni-1`; a compose service name such as `patroni-1`
#: is mapped through `topology.names.container`) or a docker SDK `Container`.
Target = Union[str, "Container"]

#: Comment prefix carried by every iptables rule a fault adds (`dpg-chaos:<fault-id>`); the reaper
#: (`chaos.faults.heal`) finds rules by it.
RULE_TAG = "dpg-chaos"

#: Container states from which `docker start` brings a container back.
STARTABLE = frozenset({"created", "exited", "dead"})


class MarksHistory(Protocol):
    """What a fault needs from `chaos.history.History` (duck-typed, never imported)."""

    def mark(self, action: str, target: str, detail: str = "") -> Any: ...


class FaultError(RuntimeError):
    """A fault could not be injected (bad target, missing tool in the container, API refused)."""


class FaultUnsupported(FaultError):
    """The fault cannot run against this deployment at all (a tool or capability the target lacks, and no helper
    container can stand in). Raised before anything is injected; a test that meets it is skipped with the reason."""


@dataclass(frozen=True)
class FaultEvent:
    """One line of a fault's own timeline (`fault.events`)."""

    at: str  # ISO-8601 UTC, millisecond precision
    monotonic: float
    action: str  # inject | injected | inject-failed | heal | heal-failed
    target: str
    detail: str


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------------------------- docker


_client: DockerClient | None = None
_client_lock = threading.Lock()


def docker_client() -> DockerClient:
    """The process-wide docker SDK client (`docker.from_env()`), created on first use."""
    global _client
    with _client_lock:
        if _client is None:
            import docker

            _client = docker.from_env()
        return _client


def target_name(target: Target) -> str:
    """Name of a target without touching Docker (for `describe()` before `inject()`)."""
    if isinstance(target, str):
        return target
    return getattr(target, "name", None) or str(target)


def resolve(target: Target, client: DockerClient | None = None, *, touch: bool = True) -> Container:
    """A fresh `Container` for a target, from the Docker engine that runs it.

    A string is a role of the deployment under test (`patroni-1`) or the name of one of its containers; either is
    looked up in the inventory, which knows the engine. In the embedded topology a name the inventory does not list
    (a testbed container of ours) is looked up on the local engine. Under --target nothing outside the inventory is
    ever touched: such a name is a FaultError. `touch=False` for a container that is only looked at (a peer whose
    address a rule names); a touched one must be covered by the running test's fault declaration."""
    from docker.errors import NotFound

    from topology.errors import TopologyError
    from topology.inventory import current, engines

    if not isinstance(target, str):
        try:
            target.reload()
            return target
        except NotFound as e:
            raise FaultError(f"container {target_name(target)!r} no longer exists") from e
    inv = current()
    try:
        role = target if target in inv.roles else engines().role_of(target)
        if role is not None:
            if touch:
                declared.check_role(role, target)
            return engines().container(role)
    except TopologyError as e:
        raise FaultError(str(e)) from None
    if inv.is_target:
        raise FaultError(f"{target!r} is not a container of inventory {inv.name}: target mode never touches it")
    if touch:
        declared.check_role(None, target)
    try:
        return (client or docker_client()).containers.get(target)
    except NotFound:
        raise FaultError(f"no container named {target!r}") from None


def reload_or_none(c: Container) -> Container | None:
    """`c.reload()`; None when the container was removed meanwhile (nothing left to heal)."""
    from docker.errors import NotFound

    try:
        c.reload()
        return c
    except NotFound:
        return None


def exec_root(
    c: Container, cmd: list[str], *, check: bool = True, what: str = "", expect=None, attempts: int = 5
) -> tuple[int, str]:
    """Run `cmd` (argv list, no shell) as root inside `c`; raise FaultError with the output if it fails.

    Docker sometimes loses the output of a short-lived exec (observed: `iptables -S` returning b""
    with exit 0). For reads, pass `expect(rc, out) -> bool`; the command is re-run (it must be
    idempotent) until its output looks complete, up to `attempts` times.
    """
    for attempt in range(attempts if expect else 1):
        res = c.exec_run(cmd, user="root", stdout=True, stderr=True)
        out = (res.output or b"").decode("utf-8", "replace").strip()
        if expect is None or expect(res.exit_code, out):
            break
        log.debug("exec %s in %s: implausible output %r (attempt %d)", cmd, c.name, out, attempt + 1)
        time.sleep(0.05 * (attempt + 1))
    else:
        raise FaultError(
            f"{what or 'command'} in {c.name} gave no plausible output after {attempts} "
            f"tries: {' '.join(cmd)}: exit {res.exit_code}: {out!r}"
        )
    if check and res.exit_code != 0:
        raise FaultError(f"{what or 'command'} failed in {c.name} (exit {res.exit_code}): {' '.join(cmd)}: {out}")
    return res.exit_code, out


def signal_name(sig: str | int) -> str:
    """Normalise `"SIGKILL"`, `"KILL"`, `"kill"`, `9` to `"SIGKILL"`; reject unknown signals."""
    try:
        if isinstance(sig, int):
            return _signal.Signals(sig).name
        s = sig.strip().upper()
        return _signal.Signals[s if s.startswith("SIG") else "SIG" + s].name
    except (KeyError, ValueError):
        raise ValueError(f"unknown signal {sig!r}") from None


def wait_until(predicate, *, within: float, interval: float = 0.2) -> bool:
    """Poll `predicate` until it is truthy or `within` seconds pass; return its last verdict."""
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------- Fault


class Fault:
    """Base class: a context manager that injects on enter and always heals on exit."""

    #: short kind name shown by `python -m chaos list`; defaults to the class name.
    kind: str = ""

    def __init__(self, *, history: MarksHistory | None = None) -> None:
        self.id = f"{type(self).__name__.lower()}-{secrets.token_hex(4)}"
        self.history = history
        self.events: list[FaultEvent] = []
        self.injected = False  # inject() returned normally
        self.active = False  # between __enter__ and the end of __exit__
        self.healed = False  # heal() succeeded since the last inject (later heals are not re-marked)

    # -- to override ---------------------------------------------------------------------------------

    def describe(self) -> str:
        """One human line: what is broken and where (`Paused(dpg-patroni-1)`)."""
        return type(self).__name__

    def targets(self) -> str:
        """The target(s) as one string for history marks."""
        return ""

    def inject(self) -> None:
        raise NotImplementedError

    def heal(self) -> None:
        """Undo the fault. Idempotent; must be safe when nothing (or only part) was injected."""
        raise NotImplementedError

    # -- the contract ----------------------------------------------------------------------------------

    def __enter__(self):
        if self.active:
            raise RuntimeError(f"{self!r} is already active; create a new fault to inject it again")
        kind = declared.check_kind(type(self))  # an undeclared fault is refused before anything happens
        registry.register(self)
        journal.write("inject", self)  # before the side effect: a SIGKILL from here on leaves a pending record
        self.active = True
        self.healed = False
        self._event("inject", self.describe())
        try:
            with declared.injecting(kind):
                self.inject()
        except BaseException as e:
            self._event("inject-failed", f"{type(e).__name__}: {e}", level=logging.WARNING)
            self.__exit__(*sys.exc_info())
            raise
        self.injected = True
        journal.write("injected", self)  # what inject learnt (an address, a previous value) for the reaper
        self._event("injected", self.injected_detail())
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self._heal_logged()
        finally:
            self.active = False
            registry.unregister(self)
        return False

    def _heal_logged(self) -> None:
        """heal(), recorded once: a second heal (signal handler, then `__exit__`) is silent."""
        try:
            self.heal()
        except BaseException as e:
            self._event("heal-failed", f"{type(e).__name__}: {e}", level=logging.ERROR)
            raise
        if not self.healed:
            self.healed = True
            journal.write("healed", self)
            self._event("heal", self.healed_detail())

    def undo_record(self) -> dict[str, Any] | None:
        """What `python -m chaos heal` needs to undo this fault from outside, if the run is killed while it is active
        (chaos.faults.journal), from constructor arguments only (inject may not have run). None: nothing to undo
        (a switchover, a killed process that its supervisor recovers)."""
        return None

    def injected_detail(self) -> str:
        """Detail recorded once inject() succeeded (e.g. rules added, pid killed)."""
        return self.describe()

    def healed_detail(self) -> str:
        """Detail recorded once heal() succeeded (e.g. new leader)."""
        return self.describe()

    # -- trail -----------------------------------------------------------------------------------------

    def _event(self, action: str, detail: str, *, level: int = logging.INFO) -> None:
        ev = FaultEvent(utc_now(), time.monotonic(), action, self.targets(), detail)
        self.events.append(ev)
        log.log(level, "%s %s %s [%s] %s", ev.at, action, self.id, ev.target, detail)
        if self.history is not None and action in ("inject", "heal", "inject-failed", "heal-failed"):
            try:
                self.history.mark(action, ev.target, detail)
            except Exception:  # a broken recorder must never stop a heal
                log.exception("history.mark failed for %s", self.id)

    def __repr__(self) -> str:
        return f"<{self.id} {self.describe()}{' active' if self.active else ''}>"


def names(targets: Iterable[Target]) -> str:
    return ",".join(target_name(t) for t in targets)
