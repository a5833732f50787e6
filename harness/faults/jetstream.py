"""JetStream admin faults: the router's durable consumer deleted (and kept deleted while held).

The router re-creates its consumer after a few failed binds; holding the fault deletes it
again whenever it reappears, so the router sees subscribe failures for the whole duration.
Healing re-creates the consumer from the configuration saved before the first deletion.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import anyio
import nats
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from harness.faults.base import FaultBase, FaultDriver, FaultNotInEffect, FaultStillPresent


class JetStreamFault(FaultBase):
    """A JetStream admin action against the router's stream or consumer, undone on heal."""

    kind: Literal["jetstream"]
    action: Literal["delete_consumer"]
    stream: str = "router-stream"
    consumer: str = "router-decide-consumer"


HOLD_INTERVAL = 0.5


class JetStreamDriver(FaultDriver):
    kind = "jetstream"
    spec_model = JetStreamFault
    through_toxiproxy = False
    spec: JetStreamFault

    async def capable(self) -> str | None:
        try:
            info = await self._info()
        except Exception as exc:  # noqa: BLE001 - any failure to ask is the reason
            return f"JetStream at {self.ctx.target.nats_url}: {type(exc).__name__}: {exc}"
        if info is None:
            return f"consumer {self.spec.consumer} of stream {self.spec.stream} does not exist"
        return None

    @contextlib.asynccontextmanager
    async def _jetstream(self) -> AsyncIterator[Any]:
        """A short-lived connection straight to NATS (not through the router's proxy)."""
        nc = await nats.connect(self.ctx.target.nats_url, name="harness-fault", connect_timeout=3)
        try:
            yield nc.jetstream(timeout=5)
        finally:
            await nc.close()

    async def _info(self) -> Any | None:
        async with self._jetstream() as js:
            try:
                return await js.consumer_info(self.spec.stream, self.spec.consumer)
            except NotFoundError:
                return None

    async def prepare(self) -> None:
        info = await self._info()
        if info is None:
            raise FaultNotInEffect(
                f"consumer {self.spec.consumer} of stream {self.spec.stream} does not exist"
            )
        self.state["config"] = info.config.as_dict()
        self.state["created"] = str(info.created)
        self.state["ack_floor"] = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0

    async def _delete(self) -> bool:
        async with self._jetstream() as js:
            try:
                return await js.delete_consumer(self.spec.stream, self.spec.consumer)
            except NotFoundError:
                return False

    async def apply(self) -> None:
        await self._delete()
        self.state["deletions"] = 1

    async def read_back(self) -> dict[str, Any]:
        info = await self._info()
        if info is not None and str(info.created) == self.state.get("created"):
            raise FaultNotInEffect(f"consumer {self.spec.consumer} was not deleted")
        return {
            "stream": self.spec.stream,
            "consumer": self.spec.consumer,
            "present": info is not None,
            "recreated_by_router": info is not None,
        }

    async def hold(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await anyio.sleep(min(HOLD_INTERVAL, max(0.0, end - time.monotonic())))
            if time.monotonic() < end and await self._delete():
                self.state["deletions"] = self.state.get("deletions", 1) + 1

    async def remove(self) -> None:
        """Re-create the consumer as it was, resuming after its last acknowledged message
        (what a restored consumer does), not replaying the whole stream."""
        if await self._info() is not None:
            return
        saved = dict(self.state["config"])
        saved.pop("opt_start_time", None)
        saved["deliver_policy"] = DeliverPolicy.BY_START_SEQUENCE.value
        saved["opt_start_seq"] = int(self.state.get("ack_floor", 0)) + 1
        config = ConsumerConfig.from_response(saved)
        async with self._jetstream() as js:
            with contextlib.suppress(nats.js.errors.BadRequestError):
                await js.add_consumer(self.spec.stream, config)

    async def prove_gone(self) -> dict[str, Any]:
        info = await self._info()
        if info is None:
            raise FaultStillPresent(f"consumer {self.spec.consumer} is still missing")
        return {"stream": self.spec.stream, "consumer": self.spec.consumer, "present": True}

    async def fallback(self) -> None:
        await self.remove()
