"""The pieces a toxic pipeline is built from: timestamped chunks, channels between stages, stages.

Every await point in a stage leaves its in-flight data either in a channel, in `Stage.held`, or in
`Stage.state` (per-link state that survives restarts, handed on by the kind's `release` hook when
the stage is removed), so a stage can be interrupted synchronously (cancel its task, pass `held`
on) without losing or reordering bytes: that is what makes toxic updates and removals instant, even
under load.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from harness.toxiproxy_server.chain import Toxic
    from harness.toxiproxy_server.link import Link

log = structlog.get_logger("toxiproxy.pipeline")


class _Eof:
    """End of stream travelling down a pipeline (the source closed, or a toxic closed the link)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "EOF"


EOF: Any = _Eof()


class Chunk:
    """One socket read, stamped with its arrival time (latency counts from it)."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes | memoryview, ts: float) -> None:
        self.data = data
        self.ts = ts


class Channel:
    """An unbounded FIFO between stages; the owning link accounts its bytes for back-pressure."""

    __slots__ = ("_queue", "_waiter", "_link")

    def __init__(self, link: Link) -> None:
        self._queue: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._link = link

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, item: Any) -> None:
        self._queue.append(item)
        self._link.accounted(item, +1)
        self.wake()

    def wake(self) -> None:
        """Wake a waiting consumer, with or without data (it re-checks its state)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pop(self) -> Any:
        item = self._queue.popleft()
        self._link.accounted(item, -1)
        return item

    def clear(self) -> None:
        while self._queue:
            self.pop()

    def transfer_to(self, other: Channel) -> None:
        while self._queue:
            other.put(self.pop())

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait for data, a `wake()` or the timeout; True if data is queued."""
        if self._queue:
            return True
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiter = waiter
        timer = None
        if timeout is not None:
            timer = loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if self._waiter is waiter:
                self._waiter = None
        return bool(self._queue)

    async def get(self) -> Any:
        """Next item; cancel-safe: the item is removed only after the consumer resumes."""
        while not self._queue:
            await self.wait()
        return self.pop()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


Runner = Callable[["Stage", dict[str, Any]], Awaitable[None]]


async def run_noop(stage: Stage, attrs: dict[str, Any]) -> None:
    """Pass everything through (also what a toxic that lost its toxicity roll runs)."""
    get, send = stage.input.get, stage.send
    while True:
        item = await get()
        send(item)
        if item is EOF:
            return


class Stage:
    """One toxic on one link: its task, its channels, and per-link state that survives restarts."""

    __slots__ = (
        "link",
        "toxic",
        "input",
        "output",
        "held",
        "task",
        "state",
        "finished",
        "active",
        "fresh",
    )

    def __init__(self, link: Link, toxic: Toxic, input: Channel, output: Channel) -> None:
        self.link = link
        self.toxic = toxic
        self.input = input
        self.output = output
        self.held: Any = None
        self.task: asyncio.Task[None] | None = None
        self.state: dict[str, Any] = {}
        self.finished = False
        self.active = False
        # The link had read nothing yet: this stage sees its stream from the first byte (a
        # protocol parser is then aligned; one added to a live link starts mid-stream).
        self.fresh = link.received == 0

    def send(self, item: Any) -> None:
        """Pass an item downstream; nothing passes after EOF."""
        if self.finished:
            return
        if item is EOF:
            self.finished = True
        self.output.put(item)

    def start(self) -> None:
        """(Re)start the stage, rolling its toxicity again as the real server does.

        A per-frame kind rolls for each frame itself, so it always runs (at toxicity 0 it parses
        and never acts).
        """
        if self.finished:
            return
        toxic = self.toxic
        self.active = toxic.kind.per_frame or self.link.rng.random() < toxic.toxicity
        runner = toxic.kind.run if self.active else run_noop
        task = asyncio.get_running_loop().create_task(runner(self, dict(toxic.attributes)))
        task.add_done_callback(self._done)
        self.task = task

    def stop(self) -> None:
        """Interrupt the stage now; what it held goes on at once, without the rest of its delay."""
        task = self.task
        if task is not None:
            self.task = None
            task.cancel()
        held = self.held
        if held is not None:
            self.held = None
            self.send(held)

    def _done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "toxic_failed",
                toxic=self.toxic.name,
                type=self.toxic.kind.name,
                error=repr(task.exception()),
            )
            self.send(EOF)
