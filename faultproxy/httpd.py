"""A minimal HTTP/1.1 server over asyncio streams (stdlib only; enough for REST clients and curl).

Handles keep-alive, Content-Length and chunked request bodies; every response carries a
Content-Length. The application is one coroutine: `handler(Request) -> Response`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

log = logging.getLogger("faultproxy")

MAX_LINE = 16 * 1024
MAX_HEADERS = 100
MAX_BODY = 16 * 1024 * 1024
IDLE_TIMEOUT = 60.0
READ_TIMEOUT = 15.0


class Request:
    def __init__(self, method: str, target: str, version: str, headers: dict[str, str], body: bytes):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        raw_path = urlsplit(target).path
        #: decoded path segments: "/proxies/a%2Fb/toxics" -> ["proxies", "a/b", "toxics"]
        self.segments = [unquote(s) for s in raw_path.split("/")[1:]]
        self.path = raw_path


class Response:
    def __init__(self, status: int, body: bytes = b"", content_type: str = "application/json"):
        self.status = status
        self.body = body
        self.content_type = content_type


class BadRequest(Exception):
    pass


async def _read_line(reader: asyncio.StreamReader, timeout: float) -> bytes:
    try:
        line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise BadRequest("truncated request") from None
        return b""
    except asyncio.LimitOverrunError:
        raise BadRequest("line too long") from None
    if len(line) > MAX_LINE:
        raise BadRequest("line too long")
    return line


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size_line = await _read_line(reader, READ_TIMEOUT)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                while (await _read_line(reader, READ_TIMEOUT)).strip():  # trailers
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise BadRequest("body too large")
            body += await asyncio.wait_for(reader.readexactly(size + 2), READ_TIMEOUT)
            del body[-2:]
    length = headers.get("content-length")
    if length is None:
        return b""
    try:
        n = int(length)
    except ValueError:
        raise BadRequest("bad content-length") from None
    if n < 0 or n > MAX_BODY:
        raise BadRequest("bad content-length")
    return await asyncio.wait_for(reader.readexactly(n), READ_TIMEOUT)


def _encode(response: Response, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Status"
    head = [f"HTTP/1.1 {response.status} {reason}"]
    if response.status != 204:
        head.append(f"Content-Type: {response.content_type}")
        head.append(f"Content-Length: {len(response.body)}")
    head.append("Connection: keep-alive" if keep_alive else "Connection: close")
    body = b"" if response.status == 204 else response.body
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def make_connection_handler(handler):
    """Wrap `handler(Request) -> Response` into a `asyncio.start_server` callback."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await _read_line(reader, IDLE_TIMEOUT)
                    if not line:
                        return
                    if not line.strip():  # tolerate stray CRLF between requests
                        continue
                    parts = line.decode("latin-1").split()
                    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                        raise BadRequest("malformed request line")
                    method, target, version = parts
                    headers: dict[str, str] = {}
                    for _ in range(MAX_HEADERS + 1):
                        raw = await _read_line(reader, READ_TIMEOUT)
                        if not raw.strip():
                            break
                        name, sep, value = raw.decode("latin-1").partition(":")
                        if not sep:
                            raise BadRequest("malformed header")
                        headers[name.strip().lower()] = value.strip()
                    else:
                        raise BadRequest("too many headers")
                    body = await _read_body(reader, headers)
                except (BadRequest, asyncio.IncompleteReadError) as exc:
                    writer.write(
                        _encode(Response(400, f"400 Bad Request: {exc}\n".encode(), "text/plain; charset=utf-8"), False)
                    )
                    return
                except TimeoutError:
                    return
                connection = headers.get("connection", "").lower()
                keep_alive = ("close" not in connection) if version == "HTTP/1.1" else ("keep-alive" in connection)
                request = Request(method.upper(), target, version, headers, body)
                try:
                    response = await handler(request)
                except Exception:
                    log.exception("handler failed for %s %s", method, target)
                    response = Response(500, b'{"error":"internal error","status":500}\n')
                writer.write(_encode(response, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                writer.close()

    return serve
