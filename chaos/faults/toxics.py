"""Toxiproxy faults: latency, bandwidth, resets, timeouts on a named proxy, or the proxy switched off.

Uses `toxiproxy-python` (`from toxiproxy import Toxiproxy`). That client keeps the API address in
class attributes (`APIConsumer.host/port`), so every call first points it at this fault's `api`.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any
from urllib.parse import urlsplit

import requests

from .base import Fault, FaultError

_api_lock = threading.RLock()

TOXIC_TYPES = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data")


def _server(api: str):
    from toxiproxy import Toxiproxy

    u = urlsplit(api if "://" in api else "http://" + api)
    server = Toxiproxy()
    server.update_api_consumer(u.hostname or "127.0.0.1", u.port or 8474)
    return server


def _proxy(api: str, name: str, *, required: bool):
    """The named `toxiproxy.Proxy`, or None (if not `required`) when it does not exist."""
    try:
        proxy = _server(api).get_proxy(name)
    except requests.RequestException as e:
        raise FaultError(f"toxiproxy API at {api} not reachable: {e}") from e
    if proxy is None and required:
        known = ", ".join(sorted(_server(api).proxies())) or "none"
        raise FaultError(f"toxiproxy at {api} has no proxy {name!r} (known: {known})")
    return proxy


class Toxic(Fault):
    """Add a toxic (latency, reset_peer, ...) to a toxiproxy proxy; heal removes exactly that toxic."""

    def __init__(
        self,
        proxy_name: str,
        type: str,
        attributes: dict[str, Any] | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        api: str = "http://127.0.0.1:8474",
        *,
        history=None,
    ) -> None:
        super().__init__(history=history)
        if type not in TOXIC_TYPES:
            raise ValueError(f"unknown toxic type {type!r}; one of {', '.join(TOXIC_TYPES)}")
        if stream not in ("downstream", "upstream"):
            raise ValueError(f"stream must be downstream or upstream, not {stream!r}")
        if not 0.0 <= toxicity <= 1.0:
            raise ValueError(f"toxicity must be in [0, 1], not {toxicity}")
        self.proxy_name = proxy_name
        self.type = type
        self.attributes = dict(attributes or {})
        self.stream = stream
        self.toxicity = toxicity
        self.api = api
        self.toxic_name = f"dpg-chaos-{self.id}"
        self._added = False

    def describe(self) -> str:
        attrs = ",".join(f"{k}={v}" for k, v in sorted(self.attributes.items()))
        return (
            f"Toxic({self.proxy_name}: {self.type} {self.stream}"
            f"{' ' + attrs if attrs else ''}, toxicity={self.toxicity})"
        )

    def targets(self) -> str:
        return f"toxiproxy:{self.proxy_name}"

    def inject(self) -> None:
        from toxiproxy.exceptions import InvalidToxic, ProxyExists

        with _api_lock:
            proxy = _proxy(self.api, self.proxy_name, required=True)
            self._added = True  # from here on heal must try to delete it, even if the POST fails late
            try:
                proxy.add_toxic(
                    name=self.toxic_name,
                    type=self.type,
                    stream=self.stream,
                    toxicity=self.toxicity,
                    attributes=self.attributes,
                )
            except (InvalidToxic, ProxyExists) as e:
                raise FaultError(f"toxiproxy refused {self.describe()}: {e}") from e

    def heal(self) -> None:
        if not self._added:
            return
        from toxiproxy.exceptions import NotFound

        with _api_lock:
            proxy = _proxy(self.api, self.proxy_name, required=False)
            if proxy is None:
                return  # proxy gone, toxic gone with it
            with contextlib.suppress(NotFound):
                proxy.destroy_toxic(self.toxic_name)


class ProxyDisabled(Fault):
    """Disable a toxiproxy proxy (drops its connections, stops listening); heal enables it again."""

    def __init__(self, proxy_name: str, api: str = "http://127.0.0.1:8474", *, history=None) -> None:
        super().__init__(history=history)
        self.proxy_name = proxy_name
        self.api = api
        self._touched = False

    def describe(self) -> str:
        return f"ProxyDisabled({self.proxy_name})"

    def targets(self) -> str:
        return f"toxiproxy:{self.proxy_name}"

    def inject(self) -> None:
        with _api_lock:
            proxy = _proxy(self.api, self.proxy_name, required=True)
            self._touched = True
            proxy.disable()

    def heal(self) -> None:
        if not self._touched:
            return
        from toxiproxy.exceptions import NotFound

        with _api_lock:
            proxy = _proxy(self.api, self.proxy_name, required=False)
            if proxy is not None and not proxy.enabled:
                with contextlib.suppress(NotFound):
                    proxy.enable()
