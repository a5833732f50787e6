"""Every toxic type: its attributes (with defaults), input checks, and its behaviour on one link.

Behaviour follows Toxiproxy 2.12 (see the reference spec §2); checks reject the inputs that crash
or hang the Go server (negative bandwidth, slicer size 0 or variation > average). The two
NATS-protocol-aware types (`nats_drop`, `nats_delay`) are extensions, in nats_toxics.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.toxiproxy_server import nats_toxics
from harness.toxiproxy_server.jsonbody import Kind
from harness.toxiproxy_server.pipeline import EOF, Chunk, Runner, Stage, run_noop

# Longest single wait (~115 days): huge int64 attributes must not overflow the loop's timers.
_MAX_MS = 10**10


def _seconds(ms: int) -> float:
    return min(ms, _MAX_MS) / 1000.0


async def run_latency(stage: Stage, attrs: dict[str, int]) -> None:
    """Delay each chunk to `latency ± jitter` ms after it arrived; time spent queued counts."""
    loop = asyncio.get_running_loop()
    latency = _seconds(attrs["latency"])
    jitter = attrs["jitter"]
    rng = stage.link.rng
    while True:
        item = await stage.input.get()
        if item is EOF:
            stage.send(EOF)
            return
        delay = latency
        if jitter > 0:
            delay += _seconds(rng.randrange(2 * jitter) - jitter)
        wait = delay - (loop.time() - item.ts)
        if wait > 0:
            stage.held = item
            await asyncio.sleep(wait)
            stage.held = None
        item.ts += wait
        stage.send(item)


async def run_bandwidth(stage: Stage, attrs: dict[str, int]) -> None:
    """Hold each chunk for its transmission time at `rate` KB/s, carrying timer error forward."""
    loop = asyncio.get_running_loop()
    rate = attrs["rate"]
    debt = 0.0
    while True:
        item = await stage.input.get()
        if item is EOF:
            stage.send(EOF)
            return
        stage.held = item
        if rate <= 0:
            await loop.create_future()  # stalls until the toxic is updated or removed
        debt += len(item.data) / (rate * 1000.0)
        piece = rate * 100
        while len(item.data) > piece:
            await asyncio.sleep(0.1)
            stage.send(Chunk(item.data[:piece], item.ts))
            item.data = item.data[piece:]
            debt -= 0.1
        started = loop.time()
        if debt > 0:
            await asyncio.sleep(debt)
        debt -= loop.time() - started
        stage.held = None
        stage.send(item)


async def run_slow_close(stage: Stage, attrs: dict[str, int]) -> None:
    """Pass data; hold the close back for `delay` ms."""
    get, send = stage.input.get, stage.send
    while True:
        item = await get()
        if item is EOF:
            stage.held = EOF
            await asyncio.sleep(_seconds(max(attrs["delay"], 0)))
            stage.held = None
            send(EOF)
            return
        send(item)


async def run_timeout(stage: Stage, attrs: dict[str, int]) -> None:
    """Swallow all data; close the link after `timeout` ms without data (0 = never)."""
    timeout = _seconds(attrs["timeout"])
    channel = stage.input
    while True:
        if timeout > 0 and not await channel.wait(timeout):
            stage.send(EOF)
            return
        item = await channel.get()
        if item is EOF:
            stage.send(EOF)
            return


async def run_reset_peer(stage: Stage, attrs: dict[str, int]) -> None:
    """On the first chunk (dropped) or EOF, wait `timeout` ms, then reset both sockets (RST)."""
    await stage.input.get()
    if attrs["timeout"] > 0:
        await asyncio.sleep(_seconds(attrs["timeout"]))
    stage.finished = True
    stage.link.reset_connection()


def slice_bounds(
    size: int, average: int, variation: int, randrange: Callable[[int], int]
) -> list[int]:
    """Go's slicer cut points: halve until a piece is ≤ average + variation, jittering cuts."""
    bounds = [0]
    pending = [(0, size)]
    while pending:
        start, end = pending.pop()
        if (end - start) - average <= variation:
            bounds.append(end)
            continue
        mid = start + (end - start) // 2
        if variation > 0:
            mid += randrange(2 * variation) - variation
        pending.append((mid, end))
        pending.append((start, mid))
    return bounds


async def run_slicer(stage: Stage, attrs: dict[str, int]) -> None:
    """Split each chunk into smaller pieces, waiting `delay` µs after each one."""
    average, variation = attrs["average_size"], attrs["size_variation"]
    delay = min(max(attrs["delay"], 0), _MAX_MS) / 1_000_000.0
    randrange = stage.link.rng.randrange
    while True:
        item = await stage.input.get()
        if item is EOF:
            stage.send(EOF)
            return
        data = memoryview(item.data)
        bounds = slice_bounds(len(data), average, variation, randrange)
        last = len(bounds) - 1
        for i in range(1, len(bounds)):
            if bounds[i] > bounds[i - 1]:
                stage.send(Chunk(bytes(data[bounds[i - 1] : bounds[i]]), item.ts))
            if delay > 0:
                stage.held = Chunk(data[bounds[i] :], item.ts) if i < last else None
                await asyncio.sleep(delay)
        stage.held = None


async def run_limit_data(stage: Stage, attrs: dict[str, int]) -> None:
    """Deliver exactly `bytes` bytes on the link, then close it; the count survives updates."""
    limit = attrs["bytes"]
    state = stage.state
    state.setdefault("sent", 0)
    while True:
        item = await stage.input.get()
        if item is EOF:
            stage.send(EOF)
            return
        remaining = max(limit - state["sent"], 0)
        if remaining < len(item.data):
            item.data = item.data[:remaining]
        if item.data:
            stage.send(item)
            state["sent"] += len(item.data)
        if limit - state["sent"] <= 0:
            stage.send(EOF)
            return


def _check_bandwidth(attrs: dict[str, int], direction: str) -> str | None:
    return "rate must be >= 0" if attrs["rate"] < 0 else None


def _check_slicer(attrs: dict[str, int], direction: str) -> str | None:
    if attrs["average_size"] <= 0:
        return "average_size must be > 0"
    if attrs["size_variation"] < 0:
        return "size_variation must be >= 0"
    if attrs["size_variation"] > attrs["average_size"]:
        return "size_variation must not exceed average_size"
    return None


def _nothing_held(stage: Stage) -> list[Chunk]:
    return []


@dataclass(frozen=True)
class ToxicKind:
    """A toxic type: attribute names in output order with defaults, behaviour and input checks.

    `check(attributes, direction)` says why a configuration is invalid (or None). `per_frame`:
    toxicity is a probability per frame, rolled by the toxic itself, so the stage always runs and
    the toxic counts frames (its JSON gains `stats`). `release(stage)` hands on what a stage
    keeps in its per-link state when it is removed, so nothing is lost.
    """

    name: str
    defaults: dict[str, Any]
    run: Runner
    check: Callable[[dict[str, Any], str], str | None] = field(
        default=lambda attrs, direction: None
    )
    closes_on_remove: bool = False
    per_frame: bool = False
    release: Callable[[Stage], list[Chunk]] = _nothing_held

    @property
    def schema(self) -> dict[str, Kind]:
        """Each attribute's JSON type, declared by its default: int, or string."""
        return {
            name: "string" if isinstance(default, str) else "int"
            for name, default in self.defaults.items()
        }


_SLICER_DEFAULTS = {"average_size": 0, "size_variation": 0, "delay": 0}

KINDS: dict[str, ToxicKind] = {
    kind.name: kind
    for kind in (
        ToxicKind("noop", {}, run_noop),
        ToxicKind("latency", {"latency": 0, "jitter": 0}, run_latency),
        ToxicKind("bandwidth", {"rate": 0}, run_bandwidth, _check_bandwidth),
        ToxicKind("slow_close", {"delay": 0}, run_slow_close),
        ToxicKind("timeout", {"timeout": 0}, run_timeout, closes_on_remove=True),
        ToxicKind("reset_peer", {"timeout": 0}, run_reset_peer),
        ToxicKind("slicer", _SLICER_DEFAULTS, run_slicer, _check_slicer),
        ToxicKind("limit_data", {"bytes": 0}, run_limit_data),
        ToxicKind(
            "nats_drop",
            nats_toxics.DROP_DEFAULTS,
            nats_toxics.run_nats_drop,
            nats_toxics.check_attributes,
            per_frame=True,
            release=nats_toxics.release,
        ),
        ToxicKind(
            "nats_delay",
            nats_toxics.DELAY_DEFAULTS,
            nats_toxics.run_nats_delay,
            nats_toxics.check_attributes,
            per_frame=True,
            release=nats_toxics.release,
        ),
    )
}
