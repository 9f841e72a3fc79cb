"""Every active fault in this process, and the last lines of defence that heal them.

* `register`/`unregister` are called by `Fault.__enter__`/`__exit__`; `active()` lists what is live.
* On first registration an `atexit` hook and SIGINT/SIGTERM handlers are installed (main thread only).
  A signal heals every active fault, then behaves as before: the previous Python handler is called
  (for SIGINT that is `default_int_handler`, which raises KeyboardInterrupt), a default disposition is
  re-delivered (the process dies of the signal, as it would have), an ignored signal stays ignored.
* `heal_all()` is what an autouse pytest fixture calls after every test (Jepsen's final `teardown!`).
* What a SIGKILLed run left behind (no in-memory state survives it) is undone by `chaos.faults.heal`.

This module imports nothing of the fault package (faults register here; the reaper lives in `heal`).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from chaos.faults.base import Fault

log = logging.getLogger("dpg.chaos")


class HealError(RuntimeError):
    """One or more faults could not be healed; the message lists each fault and its error."""


_lock = threading.RLock()
_active: dict[int, Fault] = {}  # insertion-ordered: heal in reverse (LIFO, like nested `with`)
_installed_atexit = False
_installed_signals = False
_previous: dict[int, Any] = {}
_in_signal_heal = False


# ------------------------------------------------------------------------------------------- registry


def register(fault: Fault) -> None:
    install()
    with _lock:
        _active[id(fault)] = fault


def unregister(fault: Fault) -> None:
    with _lock:
        _active.pop(id(fault), None)


def active() -> list[Fault]:
    """Active faults, oldest first."""
    with _lock:
        return list(_active.values())


def heal_all(*, reason: str = "heal_all", raise_errors: bool = True) -> list[str]:
    """Heal every active fault, newest first; return their descriptions.

    Every fault is attempted even if an earlier heal fails; failures are logged and, unless
    `raise_errors=False`, raised together as one `HealError` at the end. A healed fault leaves the
    registry; its own `__exit__` later heals again, which is a no-op by contract.
    """
    healed: list[str] = []
    errors: list[str] = []
    for fault in reversed(active()):
        desc = fault.describe()
        log.warning("%s: healing %s (%s)", reason, fault.id, desc)
        try:
            fault._heal_logged()
        except Exception as e:  # keep healing the others
            log.exception("%s: could not heal %s", reason, fault.id)
            errors.append(f"{fault.id} {desc}: {type(e).__name__}: {e}")
        else:
            healed.append(desc)
            unregister(fault)
    if errors and raise_errors:
        raise HealError("could not heal: " + "; ".join(errors))
    return healed


# --------------------------------------------------------------------------------- exit and signals


def install() -> None:
    """Install the atexit hook and (from the main thread) SIGINT/SIGTERM handlers, once."""
    global _installed_atexit, _installed_signals
    with _lock:
        if not _installed_atexit:
            atexit.register(_on_exit)
            _installed_atexit = True
        if _installed_signals or threading.current_thread() is not threading.main_thread():
            return  # signal.signal() only works in the main thread; retried on the next register
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                _previous[sig] = signal.getsignal(sig)
                signal.signal(sig, _on_signal)
            except (ValueError, OSError):  # pragma: no cover - exotic embedding
                log.warning("could not install a handler for %s", signal.Signals(sig).name)
        _installed_signals = True


def _on_exit() -> None:
    if active():
        heal_all(reason="atexit", raise_errors=False)


def _on_signal(signum: int, frame: Any) -> None:
    global _in_signal_heal
    name = signal.Signals(signum).name
    prev: Any = _previous.get(signum, signal.SIG_DFL)
    if prev is signal.SIG_IGN:
        return  # the process would have ignored it: nothing ends, nothing to heal
    if _in_signal_heal:
        log.warning("%s while healing: finishing the heal first", name)
        return
    _in_signal_heal = True
    try:
        if active():
            heal_all(reason=name, raise_errors=False)
    finally:
        _in_signal_heal = False
    if callable(prev) and prev is not _on_signal:
        prev(signum, frame)  # e.g. default_int_handler -> KeyboardInterrupt
        return
    # SIG_DFL (or a handler installed outside Python): die of the signal as we would have.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
