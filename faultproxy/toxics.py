"""Toxic types: their attributes (with Toxiproxy's names and defaults) and what they do to a stream.

Each pipe is a coroutine run by a `stream.Stub`; it reads the toxic's attributes on every step so an
update (POST /proxies/{p}/toxics/{t}) also applies to open connections. Behaviour follows
toxiproxy/toxics/*.go, including its quirks: `timeout` drops data and its timer restarts whenever
a chunk is swallowed; `reset_peer` fires `timeout` ms after the first data (or EOF) it sees.
"""

from __future__ import annotations

import asyncio
import random

from .stream import CLOSE, RESET, Chunk, Signal, Stub, noop_pipe

STREAMS = ("upstream", "downstream")


# -- pipes --------------------------------------------------------------------------------------
async def latency_pipe(stub: Stub) -> None:
    """Delay each chunk by latency +- jitter ms, counted from when it was read (not cumulative)."""
    while True:
        item = await stub.get()
        if isinstance(item, Signal):
            stub.finish(item)
            return
        attrs = stub.toxic.attributes
        delay = attrs["latency"]
        jitter = attrs["jitter"]
        if jitter > 0:
            delay += random.randrange(2 * jitter) - jitter
        sleep = delay / 1000.0 - (stub.now() - item.ts)
        if sleep > 0:
            await asyncio.sleep(sleep)
            item.ts += sleep
        stub.emit(item)


async def bandwidth_pipe(stub: Stub) -> None:
    """Limit to `rate` KB/s (1 KB = 1000 bytes), releasing at most rate*100 bytes per 100 ms."""
    debt = 0.0  # seconds still owed for bytes already let through (Toxiproxy's `sleep`)
    while True:
        item = await stub.get()
        if isinstance(item, Signal):
            stub.finish(item)
            return
        rate = stub.toxic.attributes["rate"]
        if rate <= 0:
            debt = 0.0
            stub.emit(item)
            continue
        debt += len(item.data) / (rate * 1000.0)
        piece = rate * 100
        while len(item.data) > piece:
            await asyncio.sleep(0.1)
            head, rest = item.data[:piece], item.data[piece:]
            item = Chunk(rest, item.ts)
            stub.emit(Chunk(head, item.ts), rest=item)
            debt -= 0.1
        start = stub.now()
        if debt > 0:
            await asyncio.sleep(debt)
        debt -= stub.now() - start
        stub.emit(item)


async def slow_close_pipe(stub: Stub) -> None:
    """Pass data; delay the close (EOF or a close from an earlier toxic) by `delay` ms."""
    while True:
        item = await stub.get()
        if isinstance(item, Signal):
            await asyncio.sleep(stub.toxic.attributes["delay"] / 1000.0)
            stub.finish(item)
            return
        stub.emit(item)


async def timeout_pipe(stub: Stub) -> None:
    """Swallow all data; close after `timeout` ms without data (0: never, until removed)."""
    while True:
        timeout = stub.toxic.attributes["timeout"]
        if timeout > 0:
            try:
                item = await asyncio.wait_for(stub.get(), timeout / 1000.0)
            except TimeoutError:
                stub.finish(CLOSE)
                return
        else:
            item = await stub.get()
        if isinstance(item, Signal):
            stub.finish(item)
            return
        stub.drop(item)


def _slices(length: int, average: int, variation: int) -> list[tuple[int, int]]:
    """Toxiproxy's recursive halving into ~average-sized pieces, iterative and clamped."""
    if average <= 0 or length <= 0:
        return [(0, length)]
    out: list[tuple[int, int]] = []
    todo = [(0, length)]
    while todo:
        start, end = todo.pop()
        if (end - start) - average <= variation or end - start <= 1:
            out.append((start, end))
            continue
        mid = start + (end - start) // 2
        if variation > 0:
            mid += random.randrange(2 * variation) - variation
        mid = min(max(mid, start + 1), end - 1)
        todo.append((mid, end))  # popped after the left half: keeps byte order
        todo.append((start, mid))
    return out


async def slicer_pipe(stub: Stub) -> None:
    """Cut each chunk into ~average_size +- size_variation byte pieces, `delay` µs apart."""
    while True:
        item = await stub.get()
        if isinstance(item, Signal):
            stub.finish(item)
            return
        attrs = stub.toxic.attributes
        data, ts = item.data, item.ts
        for start, end in _slices(len(data), attrs["average_size"], attrs["size_variation"]):
            rest = Chunk(data[end:], ts) if end < len(data) else None
            stub.emit(Chunk(data[start:end], ts), rest=rest)
            if attrs["delay"] > 0:
                await asyncio.sleep(attrs["delay"] / 1e6)


async def limit_data_pipe(stub: Stub) -> None:
    """Let `bytes` bytes through (counted over the connection's life), then close."""
    sent = stub.state
    while True:
        item = await stub.get()
        if isinstance(item, Signal):
            stub.finish(item)
            return
        remaining = max(stub.toxic.attributes["bytes"] - sent[0], 0)
        if remaining < len(item.data):
            stub.drop(Chunk(item.data[remaining:], item.ts))
            item = Chunk(item.data[:remaining], item.ts)
            stub.holding = item
        if item.data:
            stub.emit(item)
            sent[0] += len(item.data)
        else:
            stub.holding = None
        if stub.toxic.attributes["bytes"] - sent[0] <= 0:
            stub.finish(CLOSE)
            return


async def reset_peer_pipe(stub: Stub) -> None:
    """On the first data (or EOF), wait `timeout` ms, then reset the connection (TCP RST)."""
    await stub.get()
    timeout = stub.toxic.attributes["timeout"]
    if timeout > 0:
        await asyncio.sleep(timeout / 1000.0)
    stub.finish(RESET)


class ToxicType:
    """A registered toxic type: attribute names with defaults, the pipe, optional per-link state."""

    def __init__(self, name, attributes, pipe, state=None, closes_on_removal=False):
        self.name = name
        self.defaults = dict(attributes)
        self.pipe = pipe
        self.state = state
        self.closes_on_removal = closes_on_removal


TYPES = {
    t.name: t
    for t in (
        ToxicType("noop", {}, noop_pipe),
        ToxicType("latency", {"latency": 0, "jitter": 0}, latency_pipe),
        ToxicType("bandwidth", {"rate": 0}, bandwidth_pipe),
        ToxicType("slow_close", {"delay": 0}, slow_close_pipe),
        ToxicType("timeout", {"timeout": 0}, timeout_pipe, closes_on_removal=True),
        ToxicType("slicer", {"average_size": 0, "size_variation": 0, "delay": 0}, slicer_pipe),
        ToxicType("limit_data", {"bytes": 0}, limit_data_pipe, state=lambda: [0]),
        ToxicType("reset_peer", {"timeout": 0}, reset_peer_pipe),
    )
}


def merge_attributes(kind: ToxicType, given, base: dict) -> dict:
    """`base` updated with the known integer attributes in `given` (unknown keys are ignored, as
    Go's JSON decoder does). Raises ValueError for a non-object or a non-integer value."""
    if given is None:
        return dict(base)
    if not isinstance(given, dict):
        raise ValueError("attributes must be an object")
    out = dict(base)
    for key in kind.defaults:
        if key not in given:
            continue
        value = given[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"attribute {key} must be an integer, got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"attribute {key} must be an integer, got {value!r}")
            value = int(value)
        out[key] = value
    return out


class Toxic:
    """A toxic as the API knows it; shared by every stub running it, so updates reach all links."""

    def __init__(self, name: str, kind: ToxicType, stream: str, toxicity: float, attributes: dict):
        self.name = name
        self.kind = kind
        self.stream = stream  # as given (Toxiproxy keeps the caller's spelling)
        self.direction = stream.lower()  # "upstream" (client -> server) or "downstream"
        self.toxicity = toxicity
        self.attributes = attributes

    @property
    def closes_on_removal(self) -> bool:
        return self.kind.closes_on_removal

    def new_state(self):
        return self.kind.state() if self.kind.state else None

    def pipe(self, stub: Stub):
        return self.kind.pipe(stub)

    def to_json(self) -> dict:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.kind.name,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }
