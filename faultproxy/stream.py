"""Data plane: a proxied connection is two Links (upstream, downstream), each a chain of toxic Stubs.

Modelled on toxiproxy's link.go: reader -> stub -> stub -> ... -> writer, one asyncio task each.
Why a chain of stubs rather than one loop per direction: toxics are added, updated and removed while
connections are open, and (as in Toxiproxy) that must affect the existing connections too. A stub
emits into whatever follows it *now*, so appending a toxic needs no interruption, and removing one
hands its held chunk and queued input to its successor in order, so no byte is lost or reordered.

Queues are unbounded; back-pressure comes from a per-link byte budget: the reader stops reading the
socket while more than BUFFER_LIMIT bytes are inside the chain (a bandwidth toxic therefore slows
the sender down, as with Toxiproxy's channels, instead of buffering a whole transfer in memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct

log = logging.getLogger("faultproxy")

READ_SIZE = 32 * 1024  # what Go's io.Copy reads at a time, so chunking matches Toxiproxy
BUFFER_LIMIT = 8 * 1024 * 1024  # bytes in flight inside one link before the reader pauses
CLOSE_GRACE = 5.0  # a graceful close that cannot flush in this time is aborted


class Chunk:
    """Bytes read from the source, stamped with the loop time they were read (latency is relative to it)."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes, ts: float):
        self.data = data
        self.ts = ts


class Signal:
    """End-of-stream markers travelling through the chain after the last chunk."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


EOF = Signal("eof")  # the source closed: half-close the destination (FIN), end when both sides did
CLOSE = Signal("close")  # a toxic closed the stream (timeout, limit_data): close the whole connection
RESET = Signal("reset")  # reset_peer: close the whole connection with a TCP RST (SO_LINGER 0)


async def noop_pipe(stub: Stub) -> None:
    """Pass everything through: what a toxic does on connections its toxicity roll spared."""
    while True:
        item = await stub.get()
        if isinstance(item, Signal):
            stub.finish(item)
            return
        stub.emit(item)


class Stub:
    """One toxic running on one link: an input queue, the chunk it holds, its task and its state."""

    def __init__(self, link: Link, toxic):
        self.link = link
        self.toxic = toxic
        self.input: asyncio.Queue = asyncio.Queue()
        self.holding = None  # item taken from input and not yet emitted or dropped
        self.state = toxic.new_state()  # survives restarts (limit_data counts bytes across updates)
        self.closed = False  # emitted its end signal; never runs again
        self.active = False
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        """(Re)start; toxicity is rolled here, like Toxiproxy's ToxicStub.Run."""
        if self.closed:
            return
        self.active = random.random() < self.toxic.toxicity
        self.task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.task = None

    async def _run(self) -> None:
        try:
            if self.active:
                await self.toxic.pipe(self)
            else:
                await noop_pipe(self)
        except asyncio.CancelledError:
            raise
        except Exception:  # a toxic bug must not leave a half-dead connection behind
            log.exception("toxic %s failed; closing connection %s", self.toxic.name, self.link.conn.label)
            self.link.conn.close()

    # -- the interface toxics use -------------------------------------------------------------
    async def get(self):
        """Next item (Chunk or Signal); the held one again after a restart."""
        if self.holding is None:
            self.holding = await self.input.get()
        return self.holding

    def emit(self, item, rest=None) -> None:
        """Pass `item` on; `rest` is what is still held (the unsent part of a split chunk)."""
        self.link.queue_after(self).put_nowait(item)
        self.holding = rest

    def drop(self, chunk: Chunk | None = None) -> None:
        """Discard `chunk` (default: the held one), giving its bytes back to the link's budget."""
        chunk = self.holding if chunk is None else chunk
        if isinstance(chunk, Chunk):
            self.link.release(len(chunk.data))
        self.holding = None

    def finish(self, signal: Signal) -> None:
        """Emit the end signal; the stub never runs again."""
        if isinstance(self.holding, Chunk):
            self.drop()
        self.holding = None
        self.link.queue_after(self).put_nowait(signal)
        self.closed = True

    def now(self) -> float:
        return asyncio.get_running_loop().time()


class Link:
    """One direction of a connection: source reader -> stubs -> destination writer."""

    def __init__(
        self, conn: Connection, direction: str, source: asyncio.StreamReader, dest: asyncio.StreamWriter, toxics
    ):
        self.conn = conn
        self.direction = direction
        self.source = source
        self.dest = dest
        self.out: asyncio.Queue = asyncio.Queue()
        self.stubs = [Stub(self, t) for t in toxics]
        self.buffered = 0
        self.space = asyncio.Event()
        self.space.set()
        self.done = False
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for stub in self.stubs:
            stub.start()
        self.tasks = [loop.create_task(self._read()), loop.create_task(self._write())]

    def stop(self) -> None:
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current and not task.done():
                task.cancel()
        for stub in self.stubs:
            if stub.task is not current:
                stub.stop()

    # -- chain plumbing -----------------------------------------------------------------------
    def first_queue(self) -> asyncio.Queue:
        return self.stubs[0].input if self.stubs else self.out

    def queue_after(self, stub: Stub) -> asyncio.Queue:
        i = self.stubs.index(stub)
        return self.stubs[i + 1].input if i + 1 < len(self.stubs) else self.out

    def release(self, n: int) -> None:
        self.buffered -= n
        if self.buffered < BUFFER_LIMIT:
            self.space.set()

    def add_toxic(self, toxic) -> None:
        """Append a stub: the previous last stage simply emits into it from now on."""
        stub = Stub(self, toxic)
        self.stubs.append(stub)
        stub.start()

    def update_toxic(self, toxic) -> None:
        """Restart the stub with the new attributes/toxicity; it resumes with the chunk it held."""
        for stub in self.stubs:
            if stub.toxic is toxic and not stub.closed:
                stub.stop()
                stub.start()

    def remove_toxic(self, toxic) -> None:
        """Take the stub out, handing what it held and what queued for it to its successor.

        Synchronous (no await): nothing else runs in between, so order is preserved. A removed
        timeout toxic closes the connection instead, as Toxiproxy's TimeoutToxic.Cleanup does: the
        data it swallowed is gone, so the stream is not worth resuming.
        """
        for stub in list(self.stubs):
            if stub.toxic is not toxic:
                continue
            stub.stop()
            successor = self.queue_after(stub)
            self.stubs.remove(stub)
            if stub.closed:
                continue
            if stub.active and toxic.closes_on_removal:
                if isinstance(stub.holding, Chunk):
                    stub.drop()
                stub.holding = None
                successor.put_nowait(CLOSE)
                stub.closed = True
                continue
            if stub.holding is not None:
                successor.put_nowait(stub.holding)
                stub.holding = None
            while not stub.input.empty():
                successor.put_nowait(stub.input.get_nowait())

    # -- socket ends --------------------------------------------------------------------------
    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while self.buffered >= BUFFER_LIMIT:
                self.space.clear()
                await self.space.wait()
            try:
                data = await self.source.read(READ_SIZE)
            except (ConnectionError, OSError):
                # the source socket is dead (e.g. reset): no half-close can help, end the whole
                # connection once what is already in the chain has gone through (as Toxiproxy does)
                self.first_queue().put_nowait(CLOSE)
                return
            if not data:
                self.first_queue().put_nowait(EOF)
                return
            self.buffered += len(data)
            self.first_queue().put_nowait(Chunk(data, loop.time()))

    async def _write(self) -> None:
        while True:
            item = await self.out.get()
            if isinstance(item, Chunk):
                if self.dest.is_closing():
                    self.conn.close()
                    return
                try:
                    self.dest.write(item.data)
                    await self.dest.drain()
                except (ConnectionError, OSError, RuntimeError):
                    self.conn.close()
                    return
                self.release(len(item.data))
            elif item is EOF:
                self.conn.half_close(self)
                return
            elif item is RESET:
                self.conn.close(reset=True)
                return
            else:
                self.conn.close()
                return


def _set_linger_zero(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Connection:
    """A client connection and its upstream connection, with the two links between them."""

    def __init__(
        self,
        proxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ):
        self.proxy = proxy
        self.client_writer = client[1]
        self.upstream_writer = upstream[1]
        peer = client[1].get_extra_info("peername")
        self.label = f"{proxy.name}:{peer[0]}:{peer[1]}" if peer else proxy.name
        self.links = {
            "upstream": Link(self, "upstream", client[0], upstream[1], proxy.chain("upstream")),
            "downstream": Link(self, "downstream", upstream[0], client[1], proxy.chain("downstream")),
        }
        self.closed = False

    def start(self) -> None:
        for link in self.links.values():
            link.start()

    def half_close(self, link: Link) -> None:
        """The source of `link` ended: pass the FIN on; once both directions ended, close."""
        link.done = True
        try:
            if not link.dest.is_closing() and link.dest.can_write_eof():
                link.dest.write_eof()
        except (OSError, RuntimeError):
            pass
        if all(link.done for link in self.links.values()):
            self.close()

    def close(self, reset: bool = False, abort: bool = False) -> None:
        """Close both sockets and stop every task of this connection.

        graceful (default): flush what is buffered, then FIN (aborted after CLOSE_GRACE);
        abort: drop buffers and close now (proxy disabled/deleted);
        reset: SO_LINGER 0 then close, so the peers get a TCP RST.
        """
        if self.closed:
            return
        self.closed = True
        for link in self.links.values():
            link.stop()
        loop = asyncio.get_running_loop()
        for writer in (self.client_writer, self.upstream_writer):
            transport = writer.transport
            if reset:
                _set_linger_zero(writer)
                transport.abort()
            elif abort:
                transport.abort()
            else:
                transport.close()
                loop.call_later(CLOSE_GRACE, transport.abort)
        self.proxy.connections.discard(self)
        log.debug("connection %s closed%s", self.label, " (RST)" if reset else "")
