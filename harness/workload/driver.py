"""The workload's NATS driver: decide requests published to JetStream at a rate (and
synchronous ones over HTTP), with a tap on the router's replies, dead-letter subject, usage
events and JetStream advisories feeding the ledger."""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import nats
import structlog
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from harness.http import async_client
from harness.workload.ledger import Ledger, LedgerSummary, ServerView
from harness.workload.spec import Kind, WorkloadSpec

log = structlog.get_logger("workload")

ADVISORIES = (
    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",
    "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>",
)


def request_body(kind: Kind, request_id: str, tenant: str) -> bytes:
    body: dict[str, Any] = {"version": "1", "request_id": request_id, "tenant_id": tenant}
    if kind != "malformed":
        body["task"] = {"type": "text.generate", "payload": {"prompt": "chaos"}}
    return json.dumps(body).encode()


class WorkloadDriver:
    """Publishes at `spec.rate` until stopped; taps replies and the DLQ into the ledger."""

    def __init__(
        self,
        nats_url: str | list[str],
        spec: WorkloadSpec,
        *,
        decide_urls: list[str] | None = None,
        seed: int | None = None,
    ):
        self.nats_url = nats_url
        self.decide_urls = list(decide_urls or [])
        self.spec = spec
        self.run_tag = uuid.uuid4().hex[:8]
        self.ledger = Ledger(self.run_tag)
        self._rng = random.Random(seed)
        self._stop = anyio.Event()
        self._stopped = anyio.Event()
        self._nc: Any = None
        self._counter = 0
        self._poison: float | None = None
        self._poison_credit = 0.0
        self.publish_errors: dict[str, int] = {}

    def poison_fraction(self) -> float:
        return self.spec.mix.poison if self._poison is None else self._poison

    def poison_in_flight(self) -> int:
        """Acked poison requests the server still delivers: neither dead-lettered nor ended
        by the server (terminated or out of deliveries, per its advisories)."""
        ended = self.ledger.advisories
        return sum(
            1
            for e in self.ledger.entries.values()
            if e.kind == "poison"
            and e.acked_at
            and not e.dead_letters
            and (e.stream_seq is None or e.stream_seq not in ended)
        )

    def set_poison_override(self, fraction: float | None) -> None:
        """A poison fault: this fraction of requests is poison until reset with None. The
        fault's poison is evenly spaced, the first request after the switch poison: a random
        draw at 0.4/s can leave the first poison seconds late, and the time to the first
        dead letter is what the alerts are judged on."""
        self._poison = fraction
        self._poison_credit = 1.0

    def _next_kind(self) -> Kind:
        mix = self.spec.mix
        if self._poison is not None:
            poison = self._poison_credit >= 1.0 - 1e-9  # sums of fractions drift
            self._poison_credit += self._poison - (1.0 if poison else 0.0)
            if poison:
                return "poison"
            malformed = mix.malformed / (1.0 - mix.poison) if mix.poison < 1 else 0.0
            return "malformed" if self._rng.random() < malformed else "valid"
        r = self._rng.random()
        if r < mix.poison:
            return "poison"
        return "malformed" if r < mix.poison + mix.malformed else "valid"

    async def run(self) -> None:
        """Connect, tap, and publish on a fixed schedule until `stop_and_drain`."""

        async def quiet(_: Exception) -> None:
            return None

        self._nc = await nats.connect(
            self.nats_url,
            name=f"harness-workload-{self.run_tag}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=quiet,
        )
        subject = self.spec.subject
        await self._nc.subscribe(f"{subject}.reply", cb=self._on_reply)
        await self._nc.subscribe(f"{subject}.dlq", cb=self._on_dlq)
        for advisory in ADVISORIES:
            await self._nc.subscribe(advisory, cb=self._on_advisory)
        await self._nc.subscribe(self.spec.usage_subject, cb=self._on_usage)
        js = self._nc.jetstream(timeout=5)
        with contextlib.suppress(Exception):  # no stream yet: the router creates it
            self.ledger.stream = await js.find_stream_name_by_subject(subject)
        log.info("workload_start", rate=self.spec.rate, subject=subject)
        try:
            async with anyio.create_task_group() as tg:
                if self.spec.http_rate > 0:
                    tg.start_soon(self._http_loop)
                limiter = anyio.CapacityLimiter(256)
                await self._paced(self.spec.rate, lambda: tg.start_soon(self._publish, js, limiter))
        finally:
            self._stopped.set()

    async def _paced(self, rate: float, start_one: Callable[[], None]) -> None:
        """Call `start_one` `rate` times a second on a fixed schedule until stopped; after
        falling a second behind, the schedule restarts from now rather than burst."""
        interval = 1.0 / rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            start_one()
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await self._stop.wait()
            elif delay < -1.0:
                next_at = time.monotonic()

    async def _http_loop(self) -> None:
        """Synchronous decide requests at `http_rate`, round-robin over the routers."""
        if not self.decide_urls:
            raise RuntimeError("the workload sends synchronous decides but no router URL is known")
        limiter = anyio.CapacityLimiter(64)
        async with async_client(5.0) as client, anyio.create_task_group() as tg:
            await self._paced(
                self.spec.http_rate, lambda: tg.start_soon(self._decide, client, limiter)
            )

    async def _decide(self, client: httpx.AsyncClient, limiter: anyio.CapacityLimiter) -> None:
        async with limiter:
            self._counter += 1
            request_id = f"{self.run_tag}-{self._counter:07d}"
            tenant = self._rng.choice(self.spec.allowed_tenants)
            url = self.decide_urls[self._counter % len(self.decide_urls)]
            entry = self.ledger.published(request_id, "http", time.time())
            try:
                response = await client.post(
                    url,
                    content=request_body("valid", request_id, tenant),
                    headers={"tenant_id": tenant, "trace_id": request_id},
                )
            except httpx.HTTPError as exc:
                entry.publish_error = f"{type(exc).__name__}: {exc}"
                key = f"http {type(exc).__name__}"
                self.publish_errors[key] = self.publish_errors.get(key, 0) + 1
                return
            self.ledger.http_answer(entry, response.status_code, time.time())

    async def _publish(self, js: Any, limiter: anyio.CapacityLimiter) -> None:
        async with limiter:
            self._counter += 1
            kind = self._next_kind()
            request_id = f"{self.run_tag}-{self._counter:07d}"
            tenant = (
                self.spec.poison_tenant
                if kind == "poison"
                else self._rng.choice(self.spec.allowed_tenants)
            )
            entry = self.ledger.published(request_id, kind, time.time())
            try:
                ack = await js.publish(
                    self.spec.subject,
                    request_body(kind, request_id, tenant),
                    headers={
                        "Nats-Msg-Id": request_id,
                        "tenant_id": tenant,
                        "trace_id": request_id,
                    },
                )
            except Exception as exc:  # a failed publish is recorded, not fatal
                entry.publish_error = f"{type(exc).__name__}: {exc}"
                key = type(exc).__name__
                self.publish_errors[key] = self.publish_errors.get(key, 0) + 1
                return
            entry.acked_at = time.time()
            entry.stream_seq = ack.seq

    async def _on_reply(self, msg: Msg) -> None:
        self.ledger.reply(msg.data, time.time())

    async def _on_dlq(self, msg: Msg) -> None:
        self.ledger.dead_letter(msg.data, time.time())

    async def _on_advisory(self, msg: Msg) -> None:
        self.ledger.advisory(msg.data, time.time())

    async def _on_usage(self, msg: Msg) -> None:
        self.ledger.usage_event(msg.data, time.time())

    async def _server_view(self) -> None:
        """The consumers' `max_deliver` as the server holds it (independent of the router)."""
        if self._nc is None:
            return
        js = self._nc.jetstream(timeout=5)
        try:
            stream = self.ledger.stream or await js.find_stream_name_by_subject(self.spec.subject)
            consumers = {c.name: c.config.max_deliver for c in await js.consumers_info(stream)}
        except (NatsError, OSError) as exc:  # recorded; the delivery judge reports it
            self.ledger.server = ServerView(error=f"{type(exc).__name__}: {exc}")
            return
        named = {a["consumer"] for v in self.ledger.advisories.values() for a in v}
        relevant = {n: m for n, m in consumers.items() if n in named} or consumers
        values = {m for m in relevant.values() if m and m > 0}
        self.ledger.server = ServerView(
            stream=stream,
            consumers=consumers,
            max_deliver=values.pop() if len(values) == 1 else None,
            error=(
                f"consumers disagree on max_deliver: {relevant}"
                if len(set(relevant.values())) > 1
                else None
            ),
        )

    async def stop_and_drain(self, timeout: float) -> None:
        """Stop publishing; wait until every acked request settled (or `timeout`), then a
        short grace period so late duplicates are counted too."""
        self._stop.set()
        with anyio.move_on_after(5):
            await self._stopped.wait()
        deadline = time.monotonic() + timeout
        while not self.ledger.settled() and time.monotonic() < deadline:  # noqa: ASYNC110
            await anyio.sleep(0.2)  # the ledger is plain state: poll it
        await anyio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        with anyio.move_on_after(10):
            await self._server_view()
        await self.close()

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None

    def summary(self) -> LedgerSummary:
        return self.ledger.summary().model_copy(
            update={"rate": self.spec.rate, "publish_errors": dict(self.publish_errors)}
        )
