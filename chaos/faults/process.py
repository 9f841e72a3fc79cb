"""Kill one process inside a container (e.g. the postmaster under Patroni), not the container itself."""

from __future__ import annotations

import re

from .base import Fault, FaultError, Target, exec_root, reload_or_none, resolve, signal_name, target_name, wait_until

# pid file paths may use $VAR / ${VAR} (expanded by the container's shell) but nothing that a shell
# would execute; anything else is refused rather than quoted.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./${}@%+=:,-]+$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.@:+-]{1,15}$")  # pgrep -x matches the 15-char comm


class ProcessKilled(Fault):
    """Signal one process found by pid file or name (the supervisor must recover it); heal is a no-op."""

    def __init__(
        self,
        container: Target,
        pidfile: str | None = None,
        name: str | None = None,
        signal: str | int = "SIGKILL",
        *,
        restart: bool = False,
        settle: float = 10.0,
        history=None,
    ) -> None:
        super().__init__(history=history)
        #: the process is the container's main one and nothing restarts it (plain postgres under dumb-init:
        #: the container exits with it): heal waits up to `settle` s for the container to stop, then starts it
        self.restart = restart
        self.settle = settle
        self._restarted = ""
        if (pidfile is None) == (name is None):
            raise ValueError("ProcessKilled needs exactly one of pidfile= or name=")
        if pidfile is not None and not _SAFE_PATH.match(pidfile):
            raise ValueError(f"pidfile {pidfile!r} has characters a shell would interpret")
        if name is not None and not _SAFE_NAME.match(name):
            raise ValueError(f"process name {name!r} must be a plain command name (max 15 chars)")
        self.target = container
        self.pidfile = pidfile
        self.name = name
        self.signal = signal_name(signal)
        self.pid: int | None = None  # the pid that was signalled

    def describe(self) -> str:
        what = f"pidfile={self.pidfile}" if self.pidfile else f"name={self.name}"
        return f"ProcessKilled({target_name(self.target)}, {what}, {self.signal})"

    def targets(self) -> str:
        return target_name(self.target)

    def _find_pid(self, c) -> int:
        if self.pidfile:
            # double quotes: $PGDATA etc. expand inside the container, nothing else does (_SAFE_PATH)
            rc, out = exec_root(
                c,
                ["sh", "-c", f'head -n 1 -- "{self.pidfile}"'],
                check=False,
                expect=lambda rc, out: rc != 0 or bool(out),
            )
            if rc != 0:
                raise FaultError(f"cannot read pid file {self.pidfile} in {c.name}: {out}")
        else:
            rc, out = exec_root(
                c, ["pgrep", "-o", "-x", self.name], check=False, expect=lambda rc, out: rc != 0 or bool(out)
            )
            if rc == 1:
                raise FaultError(f"no process named {self.name!r} in {c.name}")
            if rc != 0:
                raise FaultError(f"pgrep failed in {c.name} (exit {rc}): {out}")
        first = out.strip().splitlines()[0].strip() if out.strip() else ""
        if not first.isdigit() or int(first) <= 1:
            raise FaultError(f"no usable pid for {self.describe()} in {c.name}: {out!r}")
        return int(first)

    def inject(self) -> None:
        c = resolve(self.target)
        pid = self._find_pid(c)
        exec_root(
            c,
            ["sh", "-c", 'kill -s "$1" "$2"', "kill", self.signal[3:], str(pid)],
            what=f"kill -s {self.signal[3:]} {pid}",
        )
        self.pid = pid

    def heal(self) -> None:
        """Nothing to undo: a killed process is recovered by its supervisor (Patroni, dumb-init...);
        with `restart=True` the container, which exited with its main process, is started again."""
        if not self.restart or self.pid is None:
            return
        from .containers import ensure_running

        c = reload_or_none(resolve(self.target))
        if c is not None:
            wait_until(lambda: reload_or_none(c) is None or c.status != "running", within=self.settle)
            self._restarted = ensure_running(c)

    def undo_record(self) -> dict | None:
        return {"containers": [target_name(self.target)], "action": "start"} if self.restart else None

    def injected_detail(self) -> str:
        return f"{self.describe()}: sent {self.signal} to pid {self.pid}"

    def healed_detail(self) -> str:
        if self.restart:
            return f"{self.describe()}: container {self._restarted or 'left as it was'}; signalled pid {self.pid}"
        return f"{self.describe()}: no-op (supervisor recovers); signalled pid {self.pid}"
