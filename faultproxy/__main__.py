"""`python -m faultproxy --host 0.0.0.0 --port 8474` (in the image: `python3 -m faultproxy`).

Flags follow toxiproxy-server's (-host, -port, -config, -seed, -version) so either can be started the
same way. SIGTERM/SIGINT stop it cleanly: proxies closed, their connections cut.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import sys

from . import __version__
from .server import serve


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="faultproxy", description=__doc__.splitlines()[0])
    parser.add_argument("--host", "-host", default="localhost", help="host for the API to listen on")
    parser.add_argument("--port", "-port", type=int, default=8474, help="port for the API to listen on")
    parser.add_argument(
        "--config",
        "-config",
        default=None,
        help="JSON file with a list of proxies to create at start (as POST /populate)",
    )
    parser.add_argument("--seed", "-seed", type=int, default=None, help="seed for toxicity and jitter")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--version", "-version", action="store_true", help="print the version and exit")
    args = parser.parse_args(argv)
    if args.version:
        print(__version__)
        return 0
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.seed is not None:
        random.seed(args.seed)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(args.host, args.port, args.config, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
