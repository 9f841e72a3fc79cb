"""The Toxiproxy 2.x HTTP API: routes, JSON bodies, status codes and error shapes of toxiproxy/api.go.

Why mirror it this closely: `toxiproxy-python`, curl scripts and the official image must all be
interchangeable with this server. Errors are `{"error": "...", "status": N}`; creating a proxy is
201, creating a toxic is 200 (as in Toxiproxy), deletes and /reset are 204. Mutating requests are
serialised by one lock, and each change is logged (timestamped, to stderr) on one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from . import __version__
from .httpd import Request, Response, make_connection_handler
from .proxy import AlreadyStarted, Proxy
from .toxics import STREAMS, TYPES, Toxic, merge_attributes

log = logging.getLogger("faultproxy")


class ApiError(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


def bad_body(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(detail: str) -> ApiError:
    return ApiError(f"missing required field: {detail}", 400)


PROXY_NOT_FOUND = ("proxy not found", 404)
PROXY_EXISTS = ("proxy already exists", 409)
INVALID_STREAM = ("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ("invalid toxic type", 400)
TOXIC_EXISTS = ("toxic already exists", 409)
TOXIC_NOT_FOUND = ("toxic not found", 404)


def _json(payload, status: int = 200) -> Response:
    return Response(status, (json.dumps(payload) + "\n").encode())


def _error(message: str, status: int, **extra) -> Response:
    return _json({"error": message, "status": status, **extra}, status)


def _parse_json(body: bytes):
    if not body.strip():
        raise bad_body("EOF")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_body(str(exc)) from None


def _object(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_body(f"cannot unmarshal {type(value).__name__} into {what}")
    return value


def _field(data: dict, key: str, kind, default):
    """data[key] checked against `kind` (str, bool or 'number'), or `default` when absent/null."""
    value = data.get(key)
    if value is None:
        return default
    if kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if not ok:
        raise bad_body(f"field {key}: unexpected {type(value).__name__} {value!r}")
    return value


class ToxiproxyApi:
    """Proxy collection plus the request router."""

    def __init__(self):
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    # -- plumbing -----------------------------------------------------------------------------
    async def handle(self, req: Request) -> Response:
        if req.headers.get("user-agent", "").startswith("Mozilla/"):
            # Toxiproxy refuses browsers (CSRF protection against a local API); so do we.
            return Response(403, b"User agent not allowed\n", "text/plain; charset=utf-8")
        route = self._route(req)
        if isinstance(route, Response):
            return route
        fn, args = route
        try:
            async with self.lock:
                return await fn(req, *args)
        except ApiError as exc:
            return _error(exc.message, exc.status)

    def _route(self, req: Request):
        s, m = req.segments, req.method
        table = []
        if s == ["version"]:
            table = [("GET", self.version)]
        elif s == ["reset"]:
            table = [("POST", self.reset)]
        elif s == ["populate"]:
            table = [("POST", self.populate)]
        elif s == ["proxies"]:
            table = [("GET", self.proxy_index), ("POST", self.proxy_create)]
        elif len(s) == 2 and s[0] == "proxies" and s[1]:
            table = [
                ("GET", self.proxy_show),
                ("POST", self.proxy_update),
                ("PATCH", self.proxy_update),
                ("DELETE", self.proxy_delete),
            ]
        elif len(s) == 3 and s[0] == "proxies" and s[1] and s[2] == "toxics":
            table = [("GET", self.toxic_index), ("POST", self.toxic_create)]
        elif len(s) == 4 and s[0] == "proxies" and s[1] and s[2] == "toxics" and s[3]:
            table = [
                ("GET", self.toxic_show),
                ("POST", self.toxic_update),
                ("PATCH", self.toxic_update),
                ("DELETE", self.toxic_delete),
            ]
        if not table:
            return Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        for method, fn in table:
            if method == m:
                return fn, s[1:2] + s[3:4]
        return Response(405, b"", "text/plain; charset=utf-8")

    def _proxy(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(*PROXY_NOT_FOUND)
        return proxy

    @staticmethod
    async def _start(proxy: Proxy) -> None:
        try:
            await proxy.start()
        except (OSError, ValueError) as exc:
            raise ApiError(str(exc), 500) from None

    @staticmethod
    def _proxy_input(data: dict, listen: str, upstream: str, enabled: bool) -> tuple[str, str, str, bool]:
        name = _field(data, "name", str, "")
        listen = _field(data, "listen", str, listen) or "0.0.0.0:0"
        upstream = _field(data, "upstream", str, upstream)
        enabled = _field(data, "enabled", bool, enabled)
        return name, listen, upstream, enabled

    # -- endpoints ----------------------------------------------------------------------------
    async def version(self, req: Request) -> Response:
        return Response(200, json.dumps({"version": __version__}).encode() + b"\n", "application/json;charset=utf-8")

    async def reset(self, req: Request) -> Response:
        for proxy in self.proxies.values():
            if not proxy.enabled:
                with contextlib.suppress(AlreadyStarted):
                    await self._start(proxy)
            proxy.reset_toxics()
        log.info("API reset: all proxies enabled, all toxics removed")
        return Response(204)

    async def proxy_index(self, req: Request) -> Response:
        return _json({name: p.to_json() for name, p in self.proxies.items()})

    async def proxy_create(self, req: Request) -> Response:
        data = _object(_parse_json(req.body), "proxy")
        name, listen, upstream, enabled = self._proxy_input(data, "", "", True)
        if not name:
            raise missing_field("name")
        if not upstream:
            raise missing_field("upstream")
        if name in self.proxies:
            raise ApiError(*PROXY_EXISTS)
        proxy = Proxy(name, listen, upstream)
        if enabled:
            await self._start(proxy)
        self.proxies[name] = proxy
        log.info(
            "API proxy created: name=%s listen=%s upstream=%s enabled=%s", name, proxy.listen, upstream, proxy.enabled
        )
        return _json(proxy.to_json(), 201)

    async def populate(self, req: Request) -> Response:
        data = _parse_json(req.body)
        if not isinstance(data, list):
            raise bad_body(f"cannot unmarshal {type(data).__name__} into a list of proxies")
        wanted = []
        for i, item in enumerate(data, 1):
            item = _object(item, f"proxy {i}")
            name, listen, upstream, enabled = self._proxy_input(item, "", "", True)
            if not name:
                raise missing_field(f"name at proxy {i}")
            if not upstream:
                raise missing_field(f"upstream at proxy {i}")
            wanted.append((name, listen, upstream, enabled))
        done: list[Proxy] = []
        for name, listen, upstream, enabled in wanted:
            try:
                existing = self.proxies.get(name)
                if existing is not None:
                    if not existing.differs(listen, upstream):
                        done.append(existing)
                        continue
                    existing.stop()
                proxy = Proxy(name, listen, upstream)
                if enabled:
                    await proxy.start()
            except (OSError, ValueError) as exc:
                log.warning("API populate failed at proxy %s: %s", name, exc)
                return _error(str(exc), 500, proxies=[p.to_json() for p in done])
            self.proxies[name] = proxy
            done.append(proxy)
            log.info(
                "API proxy populated: name=%s listen=%s upstream=%s enabled=%s",
                name,
                proxy.listen,
                upstream,
                proxy.enabled,
            )
        return _json({"proxies": [p.to_json() for p in done]}, 201)

    async def proxy_show(self, req: Request, name: str) -> Response:
        return _json(self._proxy(name).to_json())

    async def proxy_update(self, req: Request, name: str) -> Response:
        proxy = self._proxy(name)
        data = _object(_parse_json(req.body), "proxy")
        _, listen, upstream, enabled = self._proxy_input(data, proxy.listen, proxy.upstream, proxy.enabled)
        try:
            differs = proxy.differs(listen, upstream)
        except (OSError, ValueError) as exc:
            raise ApiError(str(exc), 500) from None
        if differs:
            proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        if enabled != proxy.enabled:
            if enabled:
                await self._start(proxy)
            else:
                proxy.stop()
        log.info(
            "API proxy updated: name=%s listen=%s upstream=%s enabled=%s",
            name,
            proxy.listen,
            proxy.upstream,
            proxy.enabled,
        )
        return _json(proxy.to_json())

    async def proxy_delete(self, req: Request, name: str) -> Response:
        proxy = self._proxy(name)
        proxy.stop()
        del self.proxies[name]
        log.info("API proxy deleted: name=%s", name)
        return Response(204)

    async def toxic_index(self, req: Request, name: str) -> Response:
        return _json(self._proxy(name).toxics_json())

    async def toxic_create(self, req: Request, name: str) -> Response:
        proxy = self._proxy(name)
        data = _object(_parse_json(req.body), "toxic")
        stream = _field(data, "stream", str, "downstream")
        if stream.lower() not in STREAMS:
            raise ApiError(*INVALID_STREAM)
        type_name = _field(data, "type", str, "")
        toxic_name = _field(data, "name", str, "") or f"{type_name}_{stream}"
        kind = TYPES.get(type_name)
        if kind is None:
            raise ApiError(*INVALID_TOXIC_TYPE)
        if proxy.get_toxic(toxic_name) is not None:
            raise ApiError(*TOXIC_EXISTS)
        toxicity = float(_field(data, "toxicity", "number", 1.0))
        try:
            attributes = merge_attributes(kind, data.get("attributes"), kind.defaults)
        except ValueError as exc:
            raise bad_body(str(exc)) from None
        toxic = Toxic(toxic_name, kind, stream, toxicity, attributes)
        proxy.add_toxic(toxic)
        log.info(
            "API toxic added: proxy=%s name=%s type=%s stream=%s toxicity=%s attributes=%s",
            name,
            toxic_name,
            type_name,
            stream,
            toxicity,
            json.dumps(attributes),
        )
        return _json(toxic.to_json())

    def _toxic(self, proxy: Proxy, name: str):
        toxic = proxy.get_toxic(name)
        if toxic is None:
            raise ApiError(*TOXIC_NOT_FOUND)
        return toxic

    async def toxic_show(self, req: Request, name: str, toxic_name: str) -> Response:
        return _json(self._toxic(self._proxy(name), toxic_name).to_json())

    async def toxic_update(self, req: Request, name: str, toxic_name: str) -> Response:
        proxy = self._proxy(name)
        toxic = self._toxic(proxy, toxic_name)
        data = _object(_parse_json(req.body), "toxic")
        toxicity = float(_field(data, "toxicity", "number", toxic.toxicity))
        try:
            attributes = merge_attributes(toxic.kind, data.get("attributes"), toxic.attributes)
        except ValueError as exc:
            raise bad_body(str(exc)) from None
        toxic.toxicity = toxicity
        toxic.attributes.clear()
        toxic.attributes.update(attributes)
        proxy.update_toxic(toxic)
        log.info(
            "API toxic updated: proxy=%s name=%s toxicity=%s attributes=%s",
            name,
            toxic_name,
            toxicity,
            json.dumps(attributes),
        )
        return _json(toxic.to_json())

    async def toxic_delete(self, req: Request, name: str, toxic_name: str) -> Response:
        proxy = self._proxy(name)
        proxy.remove_toxic(self._toxic(proxy, toxic_name))
        log.info("API toxic removed: proxy=%s name=%s", name, toxic_name)
        return Response(204)

    # -- lifecycle ----------------------------------------------------------------------------
    async def load_config(self, path: str) -> None:
        """--config: the JSON list Toxiproxy's -config takes, applied like POST /populate."""
        with open(path, "rb") as fh:
            body = fh.read()
        response = await self.handle(Request("POST", "/populate", "HTTP/1.1", {}, body))
        level = logging.INFO if response.status == 201 else logging.ERROR
        log.log(level, "config %s: %s", path, response.body.decode().strip())

    def shutdown(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()


async def serve(host: str, port: int, config: str | None = None, stop: asyncio.Event | None = None) -> None:
    """Run the API on host:port (and the proxies it creates) until `stop` is set."""
    api = ToxiproxyApi()
    if config:
        await api.load_config(config)
    server = await asyncio.start_server(make_connection_handler(api.handle), host, port, reuse_address=True)
    addrs = ", ".join(str(s.getsockname()[:2]) for s in server.sockets)
    log.info("faultproxy %s API listening on %s", __version__, addrs)
    stop = stop or asyncio.Event()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        server.close()
        api.shutdown()
