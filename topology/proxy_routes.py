"""Routes through the fault proxy (Toxiproxy API, stack `toxiproxy`): a named listener inside the proxy container
that dials one upstream, so Toxic/ProxyDisabled faults can act on exactly that link.

Created and removed with toxiproxy-python; a route left by a killed run is replaced, not reused."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import requests

from .errors import TopologyError
from .stacks import port


def api_url() -> str:
    return f"http://127.0.0.1:{port('DPG_PORT_TOXIPROXY')}"


def _server():
    from toxiproxy import Toxiproxy

    server = Toxiproxy()
    server.update_api_consumer("127.0.0.1", port("DPG_PORT_TOXIPROXY"))
    return server


@contextlib.contextmanager
def proxy_route(name: str, listen_port: int, upstream: str) -> Iterator[str]:
    """Route `0.0.0.0:<listen_port>` (in the proxy container) to `upstream` ("host:port") as proxy `name`."""
    try:
        server = _server()
        stale = server.get_proxy(name)
        if stale is not None:
            stale.destroy()
        server.create(upstream, name, listen=f"0.0.0.0:{listen_port}", enabled=True)
    except requests.RequestException as exc:
        raise TopologyError(f"fault proxy at {api_url()} refused route {name} -> {upstream}: {exc}") from None
    try:
        yield name
    finally:
        with contextlib.suppress(requests.RequestException):
            proxy = _server().get_proxy(name)
            if proxy is not None:
                proxy.destroy()
