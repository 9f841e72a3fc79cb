"""A tiny asyncio TCP echo server: the upstream the fault-proxy tests put proxies in front of.

`python -m faultproxy.echo --host 0.0.0.0 --port 7777` (in the image: `python3 -m faultproxy.echo`).
Echoes every byte back; when the client half-closes it finishes echoing and closes, so a client
sees EOF only when the whole path (proxy and its toxics included) has passed the close on.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

log = logging.getLogger("faultproxy.echo")


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(64 * 1024)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int, stop: asyncio.Event | None = None) -> None:
    server = await asyncio.start_server(_echo, host, port, reuse_address=True)
    log.info("echo listening on %s", ", ".join(str(s.getsockname()[:2]) for s in server.sockets))
    stop = stop or asyncio.Event()
    try:
        await stop.wait()
    finally:
        server.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="faultproxy.echo", description="TCP echo server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7777)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(args.host, args.port, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
