"""A proxy: one listening socket, the connections it accepted, and its ordered list of toxics.

Like toxiproxy's proxy.go: start() binds `listen` (port 0 picks one; the real address is then
reported, and kept so a re-enable binds the same port); stop() closes the listener AND every open
connection; each accepted client gets a fresh upstream connection and a `stream.Connection`.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from .stream import Connection

log = logging.getLogger("faultproxy")

DIAL_TIMEOUT = 10.0


class AlreadyStarted(Exception):
    pass


def split_hostport(address: str) -> tuple[str, int]:
    """'host:port', '[v6]:port' or ':port' -> (host, port). Raises ValueError."""
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"address {address}: missing port in address")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"address {address}: invalid port") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"address {address}: invalid port")
    return host, number


def join_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve_listen(address: str) -> tuple:
    """The (family, sockaddr) to bind for `address`, IPv4 preferred (as Go resolves 'localhost')."""
    host, port = split_hostport(address)
    infos = socket.getaddrinfo(host or "0.0.0.0", port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def normalize_listen(address: str) -> str:
    """Canonical 'ip:port' used to decide whether an update really changes the listen address."""
    _, sockaddr = resolve_listen(address)
    return join_hostport(sockaddr[0], sockaddr[1])


class Proxy:
    def __init__(self, name: str, listen: str, upstream: str):
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics: list = []
        self.connections: set[Connection] = set()
        self._server: asyncio.AbstractServer | None = None

    # -- API views ----------------------------------------------------------------------------
    def chain(self, direction: str) -> list:
        return [t for t in self.toxics if t.direction == direction]

    def toxics_json(self) -> list[dict]:
        """Upstream chain first, then downstream: the order Toxiproxy lists them in."""
        return [t.to_json() for d in ("upstream", "downstream") for t in self.chain(d)]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics_json(),
        }

    def get_toxic(self, name: str):
        return next((t for t in self.toxics if t.name == name), None)

    def differs(self, listen: str, upstream: str) -> bool:
        """Toxiproxy's Proxy.Differs; raises OSError/ValueError if `listen` does not resolve."""
        new_listen = normalize_listen(listen)
        try:
            current = normalize_listen(self.listen)
        except (OSError, ValueError):
            current = self.listen
        return current != new_listen or self.upstream != upstream

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind and listen; raises OSError/ValueError (the API answers 500, as Toxiproxy does)."""
        if self.enabled:
            raise AlreadyStarted(self.name)
        try:
            family, sockaddr = resolve_listen(self.listen)
        except socket.gaierror as exc:
            raise OSError(f"listen tcp {self.listen}: {exc.strerror}") from None
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(128)
            sock.setblocking(False)
            self._server = await asyncio.start_server(self._accept, sock=sock)
        except OSError as exc:
            sock.close()
            raise OSError(f"listen tcp {self.listen}: bind: {exc.strerror or exc}") from None
        host, port = sock.getsockname()[:2]
        self.listen = join_hostport(host, port)
        self.enabled = True
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    def stop(self) -> None:
        """Close the listener and every connection (clients see their connection cut)."""
        if not self.enabled:
            return
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        n = len(self.connections)
        for conn in list(self.connections):
            conn.close(abort=True)
        log.info("proxy %s stopped, %d connection(s) closed", self.name, n)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = self._server
        try:
            host, port = split_hostport(self.upstream)
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), DIAL_TIMEOUT)
        except (TimeoutError, OSError, ValueError) as exc:
            log.warning("proxy %s: unable to open connection to upstream %s: %s", self.name, self.upstream, exc)
            writer.transport.abort()
            return
        if self._server is not server or not self.enabled:  # stopped while we were dialling
            writer.transport.abort()
            up_writer.transport.abort()
            return
        conn = Connection(self, (reader, writer), (up_reader, up_writer))
        self.connections.add(conn)
        conn.start()
        log.debug("proxy %s accepted %s", self.name, conn.label)

    # -- toxics on live connections ------------------------------------------------------------
    def add_toxic(self, toxic) -> None:
        self.toxics.append(toxic)
        for conn in list(self.connections):
            conn.links[toxic.direction].add_toxic(toxic)

    def update_toxic(self, toxic) -> None:
        for conn in list(self.connections):
            conn.links[toxic.direction].update_toxic(toxic)

    def remove_toxic(self, toxic) -> None:
        self.toxics.remove(toxic)
        for conn in list(self.connections):
            conn.links[toxic.direction].remove_toxic(toxic)

    def reset_toxics(self) -> None:
        for toxic in list(self.toxics):
            self.remove_toxic(toxic)
