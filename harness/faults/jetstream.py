"""JetStream admin faults: the router's durable consumer deleted (and kept deleted while held).

The router re-creates its consumer after a few failed binds; holding the fault deletes it
again whenever it reappears, so the router sees subscribe failures for the whole duration.
Healing re-creates the consumer from the configuration saved before the first deletion.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import anyio
import nats
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError

from harness.faults.base import FaultDriver, FaultNotInEffect, FaultStillPresent
from harness.scenario import JetStreamFault

HOLD_INTERVAL = 0.5


class JetStreamDriver(FaultDriver):
    kind = "jetstream"
    spec: JetStreamFault

    async def _js(self) -> tuple[Any, Any]:
        nc = await nats.connect(self.ctx.target.nats_url, name="harness-fault", connect_timeout=3)
        return nc, nc.jetstream(timeout=5)

    async def _info(self) -> Any | None:
        nc, js = await self._js()
        try:
            return await js.consumer_info(self.spec.stream, self.spec.consumer)
        except NotFoundError:
            return None
        finally:
            await nc.close()

    async def prepare(self) -> None:
        info = await self._info()
        if info is None:
            raise FaultNotInEffect(
                f"consumer {self.spec.consumer} of stream {self.spec.stream} does not exist"
            )
        self.state["config"] = info.config.as_dict()
        self.state["created"] = str(info.created)

    async def _delete(self) -> bool:
        nc, js = await self._js()
        try:
            return await js.delete_consumer(self.spec.stream, self.spec.consumer)
        except NotFoundError:
            return False
        finally:
            await nc.close()

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
        if await self._info() is not None:
            return
        nc, js = await self._js()
        try:
            config = ConsumerConfig.from_response(dict(self.state["config"]))
            with contextlib.suppress(nats.js.errors.BadRequestError):
                await js.add_consumer(self.spec.stream, config)
        finally:
            await nc.close()

    async def prove_gone(self) -> dict[str, Any]:
        info = await self._info()
        if info is None:
            raise FaultStillPresent(f"consumer {self.spec.consumer} is still missing")
        return {"stream": self.spec.stream, "consumer": self.spec.consumer, "present": True}

    async def fallback(self) -> None:
        await self.remove()
