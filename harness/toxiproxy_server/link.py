"""One direction of one proxied connection: a plain relay while no toxic applies, else a pipeline.

The relay writes each read straight to the other socket (flow control by pausing the reader when
the writer's buffer fills). The first toxic switches the link to a pipeline of stages feeding a
writer task; when the last toxic goes and the pipeline has drained, the link returns to the relay.
Both switches happen between two reads, so no byte is lost or reordered.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from harness.toxiproxy_server.pipeline import EOF, Channel, Chunk, Stage

if TYPE_CHECKING:
    from harness.toxiproxy_server.chain import Toxic
    from harness.toxiproxy_server.connection import Connection

# Back-pressure for the pipeline: stop reading the source above these (the real latency toxic
# buffers up to 1024 chunks), resume below the low-water marks.
HIGH_WATER_BYTES = 8 * 1024 * 1024
LOW_WATER_BYTES = 2 * 1024 * 1024
HIGH_WATER_CHUNKS = 1024
LOW_WATER_CHUNKS = 512
# Destination write buffer before the relay pauses its reader: 256 KiB measured ~1.6x the bulk
# throughput of the 64 KiB default under uvloop (benchmarks/toxiproxy_bench.py).
WRITE_HIGH_WATER = 256 * 1024


class Link:
    """Bytes from `src` to `dst` (upstream: client→server; downstream: server→client)."""

    def __init__(self, conn: Connection, direction: str, rng: random.Random) -> None:
        self.conn = conn
        self.direction = direction
        self.rng = rng
        self.src: asyncio.Transport = None  # type: ignore[assignment]
        self.dst: asyncio.Transport = None  # type: ignore[assignment]
        self.direct = True
        self.stages: list[Stage] = []
        self.head: Channel | None = None
        self.out: Channel | None = None
        self.writer: asyncio.Task[None] | None = None
        self.buffered = 0
        self.chunks = 0
        self.src_paused = False
        self.dst_paused = False
        self.src_eof = False
        self.dst_gone = False
        self.dead = False
        self.received = 0
        self.piped = 0
        self.written = 0
        self._writable: asyncio.Future[None] | None = None
        self._time = asyncio.get_running_loop().time

    # -- set-up and teardown -------------------------------------------------------------------

    def start(self, src: asyncio.Transport, dst: asyncio.Transport, chain: list[Toxic]) -> None:
        """Attach the sockets and build the stages of the toxics configured now."""
        self.src, self.dst = src, dst
        dst.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if not chain:
            return
        self._enter_pipeline()
        for toxic in chain:
            self._append(toxic)
        for stage in self.stages:
            stage.start()

    def close(self) -> None:
        """Stop every task of the link (the connection is gone)."""
        self.dead = True
        self.direct = False
        for stage in self.stages:
            stage.finished = True
            if stage.task is not None:
                stage.task.cancel()
        if self.writer is not None:
            self.writer.cancel()
            self.writer = None

    def sent(self) -> int:
        """Bytes written to the destination so far."""
        return self.received - self.piped + self.written

    def reset_connection(self) -> None:
        self.conn.reset_peer()

    # -- the hot path --------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes read from the source."""
        self.received += len(data)
        if self.direct:
            self.dst.write(data)
            return
        if self.dead:
            return
        self.piped += len(data)
        self.head.put(Chunk(data, self._time()))  # type: ignore[union-attr]
        if not self.src_paused and (
            self.buffered > HIGH_WATER_BYTES or self.chunks > HIGH_WATER_CHUNKS
        ):
            self._pause_src(True)

    def feed_eof(self) -> None:
        """The source sent FIN or went away."""
        if self.src_eof:
            return
        self.src_eof = True
        if self.direct:
            self._close_dst()
        elif not self.dead:
            self.head.put(EOF)  # type: ignore[union-attr]

    def accounted(self, item: Any, sign: int) -> None:
        """A channel gained (+1) or lost (-1) an item; resume the source once drained enough."""
        self.chunks += sign
        if item is not EOF:
            self.buffered += sign * len(item.data)
        if (
            sign < 0
            and self.src_paused
            and not self.direct
            and self.buffered <= LOW_WATER_BYTES
            and self.chunks <= LOW_WATER_CHUNKS
        ):
            self._pause_src(False)

    # -- destination flow control --------------------------------------------------------------

    def dst_pause(self) -> None:
        self.dst_paused = True
        if self.direct:
            self._pause_src(True)

    def dst_resume(self) -> None:
        self.dst_paused = False
        self._wake_writer()
        if self.direct:
            self._pause_src(False)

    def dst_lost(self) -> None:
        self.dst_gone = True
        self.dead = True
        self.direct = False
        self._wake_writer()
        if self.out is not None:
            self.out.wake()

    def _wake_writer(self) -> None:
        waiter = self._writable
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _pause_src(self, pause: bool) -> None:
        if pause == self.src_paused:
            return
        self.src_paused = pause
        if self.src.is_closing():
            return
        if pause:
            self.src.pause_reading()
        else:
            self.src.resume_reading()

    def _close_dst(self) -> None:
        """EOF reached the writer: close the destination fully (no half-close, as in Go)."""
        self.dead = True
        self.direct = False
        if not self.dst_gone:
            self.dst.close()

    # -- pipeline mode -------------------------------------------------------------------------

    def _enter_pipeline(self) -> None:
        self.direct = False
        self.out = Channel(self)
        self.head = self.out
        self.writer = asyncio.get_running_loop().create_task(self._write_loop(self.out))
        self._pause_src(False)

    def _enter_direct(self) -> None:
        self.direct = True
        self.head = self.out = None
        self.writer = None
        self._pause_src(self.dst_paused)

    async def _write_loop(self, out: Channel) -> None:
        while True:
            if not out:
                if not self.stages and not self.dead:
                    self._enter_direct()
                    return
                await out.wait()
                continue
            item = out.pop()
            if item is EOF:
                self._close_dst()
                return
            if self.dst_gone:
                continue
            if self.dst_paused:
                self._writable = asyncio.get_running_loop().create_future()
                await self._writable
                self._writable = None
                if self.dst_gone:
                    continue
            self.dst.write(item.data)
            self.written += len(item.data)

    def _append(self, toxic: Toxic) -> Stage:
        channel = Channel(self)
        stage = Stage(self, toxic, channel, self.out)  # type: ignore[arg-type]
        if self.stages:
            self.stages[-1].output = channel
        else:
            self.head = channel
        self.stages.append(stage)
        return stage

    def _index(self, toxic: Toxic) -> int | None:
        return next((i for i, stage in enumerate(self.stages) if stage.toxic is toxic), None)

    # -- live toxic changes (each synchronous: no byte is in flight between steps) ----------------

    def add_toxic(self, toxic: Toxic) -> None:
        """Append a stage; the stage before it is interrupted and restarted (toxicity re-rolled)."""
        if self.dead:
            return
        if self.direct:
            self._enter_pipeline()
        previous = self.stages[-1] if self.stages else None
        if previous is not None:
            previous.stop()
        stage = self._append(toxic)
        if previous is not None:
            previous.start()
        stage.start()

    def update_toxic(self, toxic: Toxic) -> None:
        """Restart the toxic's stage with its new settings; what it held goes on at once."""
        index = self._index(toxic)
        if index is not None:
            stage = self.stages[index]
            stage.stop()
            stage.start()

    def remove_toxic(self, toxic: Toxic) -> None:
        """Take the stage out, passing on all it held, kept and queued (timeout: close the link)."""
        index = self._index(toxic)
        if index is None:
            return
        stage = self.stages.pop(index)
        stage.stop()
        for chunk in toxic.kind.release(stage):  # e.g. delayed frames, then a partial frame
            stage.send(chunk)
        previous = self.stages[index - 1] if index > 0 else None
        if previous is not None:
            previous.stop()
        if toxic.kind.closes_on_remove:
            stage.send(EOF)
            stage.input.clear()
        else:
            stage.input.transfer_to(stage.output)
        if previous is not None:
            previous.output = stage.output
            previous.start()
        else:
            self.head = stage.output
        if not self.stages and self.out is not None:
            self.out.wake()
