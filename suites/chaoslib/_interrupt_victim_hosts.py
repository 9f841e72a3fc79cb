"""Helper for test_faults: with a host isolated and another crashed, announce READY and wait for a signal.

Run as `DPG_TARGET=<testbed inventory> python _interrupt_victim_hosts.py`. The parent then sends SIGINT or SIGTERM;
the chaos registry must heal both host faults (the crashed host rebooted with its container, no rule left) before
the process ends.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from chaos.faults import HostCrashed, HostIsolated


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as an interactive run, whatever our parent ignores
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with HostIsolated("h2"), HostCrashed("h1"):
        print("READY", flush=True)
        time.sleep(120)
    print("the body ended without a signal", file=sys.stderr)


if __name__ == "__main__":
    main()
