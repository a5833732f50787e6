"""Thin adapter over nats-py for JetStream admin calls (consumer info, delete, re-create).

Each call opens a short-lived connection straight to NATS (never through the router's proxy);
every failure of the library or the socket comes out as `NatsAdminError` naming the URL and the
call, so callers never see a nats-py exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import nats
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig, ConsumerInfo
from nats.js.errors import BadRequestError, NotFoundError

from harness.errors import NatsAdminError, describe


class NatsAdmin:
    """JetStream admin calls against one NATS URL."""

    def __init__(self, url: str, *, timeout: float = 5.0, name: str = "harness-admin"):
        self.url = url
        self.timeout = timeout
        self.name = name

    @contextlib.asynccontextmanager
    async def _jetstream(self, action: str) -> AsyncIterator[Any]:
        async def quiet(_: Exception) -> None:  # the raised error says it; no log spam
            return None

        try:
            # An admin call fails fast and says why: nats-py retries a refused first connect
            # (every reconnect_time_wait, max_reconnect_attempts times) whatever allow_reconnect
            # says, so it is bounded here.
            with anyio.fail_after(self.timeout):
                nc = await nats.connect(
                    self.url,
                    name=self.name,
                    connect_timeout=3,
                    allow_reconnect=False,
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.5,
                    error_cb=quiet,
                )
        except (NatsError, OSError) as exc:
            raise NatsAdminError(f"NATS {self.url}: {action}: {describe(exc)}") from exc
        try:
            yield nc.jetstream(timeout=self.timeout)
        except (NatsError, OSError) as exc:
            raise NatsAdminError(f"NATS {self.url}: {action}: {describe(exc)}") from exc
        finally:
            with contextlib.suppress(NatsError, OSError):
                await nc.close()

    async def consumer_info(self, stream: str, consumer: str) -> ConsumerInfo | None:
        """The consumer as the server holds it, or None when it does not exist."""
        async with self._jetstream(f"consumer info {stream}/{consumer}") as js:
            try:
                return await js.consumer_info(stream, consumer)
            except NotFoundError:
                return None

    async def delete_consumer(self, stream: str, consumer: str) -> bool:
        """Delete the consumer; False when it was already gone."""
        async with self._jetstream(f"delete consumer {stream}/{consumer}") as js:
            try:
                return bool(await js.delete_consumer(stream, consumer))
            except NotFoundError:
                return False

    async def add_consumer(self, stream: str, config: ConsumerConfig) -> bool:
        """Create the consumer; False when the server refused it (e.g. it exists again)."""
        async with self._jetstream(f"add consumer {stream}/{config.durable_name}") as js:
            try:
                await js.add_consumer(stream, config)
            except BadRequestError:
                return False
            return True
