"""A run of ours killed in the middle of a fault on a target, then `python -m chaos heal --target`: the frozen leader
is unpaused from the fault journal (exactly what the dead run left, nothing swept by state), and nothing stays.

    kill_and_heal.py INVENTORY

Starts the freeze scenario against the target, waits (bounded) until a Patroni member is paused, SIGKILLs pytest (no
finally, no atexit, no signal handler runs), checks that the member is still paused (the kill really left it), runs
`chaos heal --target` and checks that no container of the target is paused any more and the journal has nothing
pending. Exit 0 when all of that holds, 1 otherwise, with one line saying which step failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import yaml

ROOT = Path(__file__).resolve().parent.parent
TEST = "suites/failover/test_leader_failures.py::test_frozen_leader_accepts_no_late_writes"


def say(msg: str) -> None:
    print(f"[kill-and-heal] {msg}", flush=True)


def engine_of(inv: dict) -> docker.DockerClient:
    engines = inv.get("engines") or {"local": {"url": "unix:///var/run/docker.sock"}}
    return docker.DockerClient(base_url=next(iter(engines.values()))["url"], timeout=30)


def paused(client: docker.DockerClient, names: list[str]) -> list[str]:
    return [c.name for c in client.containers.list(filters={"status": "paused"}) if c.name in names]


def main(path: str) -> int:
    inv = yaml.safe_load(Path(path).read_text())
    names = [m["container"] if isinstance(m["container"], str) else "?" for m in inv["patroni"]["members"].values()]
    client = engine_of(inv)
    env = {**os.environ, "DPG_TARGET": os.path.abspath(path)}
    victim = subprocess.Popen(
        [sys.executable, "-m", "pytest", TEST, "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not (frozen := paused(client, names)):
            if time.monotonic() > deadline or victim.poll() is not None:
                say("FAILED: the scenario never froze a Patroni member")
                return 1
            time.sleep(0.5)
        time.sleep(2)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        say(f"pytest SIGKILLed while {frozen} was frozen")
    finally:
        if victim.poll() is None:
            victim.kill()
    if paused(client, names) != frozen:
        say(f"FAILED: after the kill {paused(client, names)} is paused, expected {frozen}")
        return 1
    heal = subprocess.run([sys.executable, "-m", "chaos", "heal", "--target", path], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    print(heal.stdout, end="")
    if paused(client, names):
        say(f"FAILED: still paused after chaos heal: {paused(client, names)}")
        return 1
    again = subprocess.run([sys.executable, "-m", "chaos", "heal", "--target", path, "--dry-run"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    if again.stdout.strip() != "nothing to heal":
        say(f"FAILED: the journal still has pending faults after the heal: {again.stdout.strip()}")
        return 1
    say("the dead run's freeze was healed from the journal; nothing pending")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
