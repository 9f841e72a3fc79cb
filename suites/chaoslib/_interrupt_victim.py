"""Helper for test_faults: enter Isolated(a from b) + Paused(b), announce READY, wait for a signal.

Run as `python _interrupt_victim.py <container-a> <container-b>`. The parent then sends SIGINT or
SIGTERM; the chaos registry must heal both faults before the process ends.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from chaos.faults import Isolated, Paused


def main(a: str, b: str) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    # Behave like an interactive run even if our parent started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with Isolated(a, from_=[b]), Paused(b):
        print("READY", flush=True)
        time.sleep(120)
    print("the body ended without a signal", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
