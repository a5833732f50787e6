"""The NATS-protocol-aware toxics (an extension beyond Toxiproxy): drop or delay chosen frames.

`nats_drop` drops matching frames; `nats_delay` holds them back `delay ± jitter` ms and re-inserts
them between two frames while the rest keeps flowing. Toxicity is the probability per matching
frame, rolled on the link's generator (a router has one connection, so Toxiproxy's per-connection
roll could only mean all or nothing). The stage always parses, whatever its toxicity.

Everything a stage holds (parser, partial frame, delayed frames) lives in `stage.state`, so a
restart (toxic added, updated, removed next to it) loses nothing; `release` hands it on when the
stage is removed or reaches EOF. Output is frame-aligned: only whole frames go out, so a delayed
frame can never land inside another one.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Any

import structlog

from harness.toxiproxy_server.nats_frames import (
    HMSG,
    HPUB,
    MSG,
    PUB,
    Frame,
    FrameParser,
    Mode,
    compile_subject,
)
from harness.toxiproxy_server.pipeline import EOF, Chunk, Stage

log = structlog.get_logger("toxiproxy.nats")

# Longest single wait (~115 days): huge int64 attributes must not overflow the loop's timers.
_MAX_MS = 10**10

ACK_PREFIX = b"$JS.ACK."


def _is_ack(data: bytes, start: int, end: int) -> bool:
    return start == end or (end - start == 4 and data.startswith(b"+ACK", start))


def _starts(prefix: bytes) -> Callable[[bytes, int, int], bool]:
    return lambda data, start, end: data.startswith(prefix, start, end)


# frames= value -> test on a JetStream ack's body (the payload after any headers); acks are
# client -> server only.
_ACK_BODIES: dict[str, Callable[[bytes, int, int], bool]] = {
    "ack": _is_ack,
    "nak": _starts(b"-NAK"),
    "term": _starts(b"+TERM"),
    "wpi": _starts(b"+WPI"),
    "acks": lambda data, start, end: True,
}
FRAME_KINDS = (*_ACK_BODIES, "msg")

DROP_DEFAULTS: dict[str, Any] = {"frames": "ack", "subject": ">"}
DELAY_DEFAULTS: dict[str, Any] = {"frames": "ack", "subject": ">", "delay": 0, "jitter": 0}

Selector = Callable[[Frame, bytes], bool]


def check_attributes(attrs: dict[str, Any], direction: str) -> str | None:
    """Why these attributes cannot work on `direction`, or None."""
    frames = attrs["frames"]
    if frames not in FRAME_KINDS:
        return f"frames must be one of {', '.join(FRAME_KINDS)}, not {frames!r}"
    if frames != "msg" and direction != "upstream":
        return (
            f"frames={frames} matches JetStream acks, which only clients send: use stream "
            "upstream (downstream only has frames=msg)"
        )
    try:
        compile_subject(attrs["subject"])
    except ValueError as exc:
        return str(exc)
    for name in ("delay", "jitter"):
        if attrs.get(name, 0) < 0:
            return f"{name} must be >= 0"
    return None


def selector(frames: str, subject: str, direction: str) -> Selector:
    """Whether a message frame of `direction` is one the toxic acts on."""
    subject_ok = compile_subject(subject)
    if frames == "msg":
        ops = (PUB, HPUB) if direction == "upstream" else (MSG, HMSG)
        return lambda frame, data: frame.op in ops and subject_ok(frame.subject)
    body_ok = _ACK_BODIES[frames]

    def select(frame: Frame, data: bytes) -> bool:
        return (
            (frame.op == PUB or frame.op == HPUB)
            and frame.subject.startswith(ACK_PREFIX)
            and subject_ok(frame.subject)
            and body_ok(data, frame.body, frame.end - 2)
        )

    return select


class LinkFrames:
    """One link's frame state, kept in `stage.state` across restarts."""

    __slots__ = ("parser", "held", "seq", "gave_up")

    def __init__(self, aligned: bool) -> None:
        self.parser = FrameParser(aligned)
        # delayed frames: (arrival + jitter draw, arrival order, frame); due at key + delay
        self.held: list[tuple[float, int, bytes]] = []
        self.seq = 0
        self.gave_up = False


def _link_frames(stage: Stage) -> LinkFrames:
    state = stage.state.get("nats")
    if state is None:
        state = stage.state["nats"] = LinkFrames(aligned=stage.fresh)
    return state


def release(stage: Stage) -> list[Chunk]:
    """What the stage still holds: delayed frames (whole, in arrival order), then a partial tail."""
    state = stage.state.get("nats")
    if state is None:
        return []
    now = asyncio.get_running_loop().time()
    out: list[Chunk] = []
    if state.held:
        frames = sorted(state.held, key=lambda entry: entry[1])
        state.held.clear()
        out.append(Chunk(b"".join(entry[2] for entry in frames), now))
    tail = state.parser.take_tail()
    if tail:
        out.append(Chunk(tail, now))
    return out


def _send_due(stage: Stage, held: list[tuple[float, int, bytes]], until: float) -> None:
    """Send, as one chunk of whole frames, every delayed frame whose key is at most `until`."""
    due = []
    while held and held[0][0] <= until:
        due.append(heapq.heappop(held)[2])
    if due:
        # stamped now: a latency toxic after this one counts its delay from here
        stage.send(Chunk(b"".join(due), asyncio.get_running_loop().time()))


async def run_nats_drop(stage: Stage, attrs: dict[str, Any]) -> None:
    """Drop matching frames, each with probability `toxicity`."""
    await _run(stage, attrs, None)


async def run_nats_delay(stage: Stage, attrs: dict[str, Any]) -> None:
    """Hold matching frames back `delay ± jitter` ms, each with probability `toxicity`."""
    await _run(stage, attrs, min(attrs["delay"], _MAX_MS) / 1000.0)


async def _run(stage: Stage, attrs: dict[str, Any], delay: float | None) -> None:
    """Process chunks as they come; between two, send the delayed frames that are due."""
    loop = asyncio.get_running_loop()
    state = _link_frames(stage)
    held = state.held
    channel = stage.input
    process = _processor(stage, state, attrs, delay)
    hold = delay or 0.0
    while True:
        wait = None
        if held:
            wait = held[0][0] + hold - loop.time()
            if wait <= 0:
                _send_due(stage, held, loop.time() - hold)
                continue
        if not await channel.wait(wait):
            continue
        item = channel.pop()
        if item is EOF:
            for chunk in release(stage):
                stage.send(chunk)
            stage.send(EOF)
            return
        process(item)


def _processor(
    stage: Stage, state: LinkFrames, attrs: dict[str, Any], delay: float | None
) -> Callable[[Chunk], None]:
    """The per-chunk step: parse, pick the frames to act on, send the rest as whole frames."""
    select = selector(attrs["frames"], attrs["subject"], stage.toxic.direction)
    toxicity = stage.toxic.toxicity
    stats = stage.toxic.stats
    rng = stage.link.rng
    jitter = min(attrs.get("jitter", 0), _MAX_MS)
    parser, held, send = state.parser, state.held, stage.send

    def process(item: Chunk) -> None:
        batch = parser.feed(item.data)
        data, ts = batch.data, item.ts
        matched = acted = mark = 0
        for frame in batch.msgs:
            if not select(frame, data):
                continue
            matched += 1
            if toxicity <= 0 or (toxicity < 1 and rng.random() >= toxicity):
                continue
            acted += 1
            if frame.start > mark:
                send(Chunk(data[mark : frame.start], ts))
            mark = frame.end
            if delay is not None:
                key = ts + (rng.randrange(2 * jitter) - jitter) / 1000.0 if jitter > 0 else ts
                state.seq += 1
                heapq.heappush(held, (key, state.seq, data[frame.start : frame.end]))
        if mark == 0 and batch.aligned == len(data):
            if data:
                send(item if item.data is data else Chunk(data, ts))
        elif batch.aligned > mark:
            send(Chunk(data[mark : batch.aligned], ts))
        if batch.raw:
            # unframed bytes follow: delayed frames (which came before them) must go first
            if held:
                _send_due(stage, held, float("inf"))
            send(Chunk(batch.raw, ts))
            if parser.mode is Mode.PASSTHROUGH and not state.gave_up:
                state.gave_up = True
                log.warning(
                    "nats_passthrough",
                    proxy=stage.link.conn.proxy.name,
                    toxic=stage.toxic.name,
                    stream=stage.toxic.direction,
                    conn=stage.link.conn.cid,
                    reason="bytes that are not NATS protocol; passing the rest on untouched",
                )
        if stats is not None:
            stats["frames"] += batch.count
            stats["matched"] += matched
            stats["acted"] += acted

    return process
