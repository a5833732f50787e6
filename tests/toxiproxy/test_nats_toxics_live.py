"""The NATS-aware toxics between nats-py and a real nats-server (JetStream), through the proxy.

Each test proves the fault on the client side (an ack that times out, a message the server
redelivers, a delivery that never comes) and on the toxic's read-back `stats`; the churn test
proves that adding, updating and removing them under traffic never corrupts the protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig

from tests.conftest import NatsServer
from tests.toxiproxy.helpers import Api

pytestmark = pytest.mark.live

STREAM = "ORDERS"
CONSUMER = "worker"


@pytest.fixture
def proxied(api: Api, nats_server: NatsServer) -> str:
    """The URL of a proxy in front of a fresh nats-server."""
    port = api.create("nats", f"127.0.0.1:{nats_server.port}")
    return f"nats://127.0.0.1:{port}"


class Conn:
    """A nats-py connection that records every error and disconnect (there must be none)."""

    def __init__(self) -> None:
        self.nc: Client = None  # type: ignore[assignment]
        self.problems: list[str] = []

    async def open(self, url: str) -> Conn:
        async def on_error(exc: Exception) -> None:
            self.problems.append(f"error: {exc!r}")

        async def on_disconnect() -> None:
            if not self.nc.is_closed:
                self.problems.append("disconnected")

        self.nc = await nats.connect(
            url, error_cb=on_error, disconnected_cb=on_disconnect, allow_reconnect=False
        )
        return self

    def healthy(self) -> None:
        assert self.problems == [], self.problems
        assert self.nc.is_connected and self.nc.last_error is None


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[Conn]:
    conn = await Conn().open(url)
    try:
        yield conn
        conn.healthy()
    finally:
        await conn.nc.close()


async def jetstream(url: str, ack_wait: float = 30.0) -> None:
    """The stream and a durable pull consumer, made on a direct connection."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name=STREAM, subjects=["orders.>"])
    await js.add_consumer(
        STREAM, ConsumerConfig(durable_name=CONSUMER, ack_policy="explicit", ack_wait=ack_wait)
    )
    await nc.close()


async def consumer_state(url: str) -> tuple[int, int, int]:
    """(pending, ack pending, redelivered) as the server sees them."""
    nc = await nats.connect(url)
    info = await nc.jetstream().consumer_info(STREAM, CONSUMER)
    await nc.close()
    return info.num_pending, info.num_ack_pending, info.num_redelivered


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def stats(api: Api, name: str) -> dict[str, int]:
    return api.get(f"/proxies/nats/toxics/{name}").json()["stats"]


async def astats(api: Api, name: str) -> dict[str, int]:
    return await asyncio.to_thread(stats, api, name)


async def _echo(msg: Msg) -> None:
    await msg.respond(msg.data)


# -- (a) dropped acks ------------------------------------------------------------------------------


def test_dropped_acks_time_out_and_the_server_redelivers(
    api: Api, nats_server: NatsServer, proxied: str
) -> None:
    api.toxic("nats", "nats_drop", stream="upstream", name="acks", attributes={"frames": "ack"})

    async def scenario() -> None:
        await jetstream(nats_server.url, ack_wait=1.0)
        async with connected(proxied) as conn:
            js = conn.nc.jetstream()
            ack = await js.publish("orders.1", b"first")  # publishing still works
            assert ack.seq == 1
            psub = await js.pull_subscribe_bind(CONSUMER, STREAM)
            [msg] = await psub.fetch(1, timeout=5)  # fetching still works
            assert msg.data == b"first" and msg.metadata.num_delivered == 1
            with pytest.raises(nats.errors.TimeoutError):
                await msg.ack_sync(timeout=0.5)
            assert (await consumer_state(nats_server.url))[1] == 1  # the server never saw it
            [again] = await psub.fetch(1, timeout=5)  # ack_wait (1 s) passed: redelivered
            assert again.data == b"first" and again.metadata.num_delivered == 2
            # core request/reply on the same connection is untouched
            sub = await conn.nc.subscribe("svc.echo", cb=_echo)
            assert (await conn.nc.request("svc.echo", b"hi", timeout=2)).data == b"hi"
            await sub.unsubscribe()
        got = stats(api, "acks")
        assert got["matched"] == got["acted"] == 1 and got["frames"] > 5, got

    run(scenario())


# -- (b) toxicity 0 --------------------------------------------------------------------------------


def test_toxicity_zero_parses_every_frame_and_never_acts(
    api: Api, nats_server: NatsServer, proxied: str
) -> None:
    api.toxic("nats", "nats_drop", stream="upstream", name="acks", toxicity=0)

    async def scenario() -> None:
        await jetstream(nats_server.url)
        async with connected(proxied) as conn:
            js = conn.nc.jetstream()
            for i in range(20):
                await js.publish(f"orders.{i}", b"x")
            psub = await js.pull_subscribe_bind(CONSUMER, STREAM)
            msgs = await psub.fetch(20, timeout=5)
            assert len(msgs) == 20
            for msg in msgs:
                await msg.ack_sync(timeout=2)
        assert await consumer_state(nats_server.url) == (0, 0, 0)

    run(scenario())
    got = stats(api, "acks")
    assert got["frames"] > 40 and got["matched"] == 20 and got["acted"] == 0, got


# -- (c) toxicity as a per-frame probability -------------------------------------------------------


def test_half_the_acks_are_dropped_at_toxicity_half(
    api: Api, nats_server: NatsServer, proxied: str
) -> None:
    api.toxic("nats", "nats_drop", stream="upstream", name="acks", toxicity=0.5)
    count = 200

    async def scenario() -> None:
        await jetstream(nats_server.url)
        async with connected(proxied) as conn:
            js = conn.nc.jetstream()
            await asyncio.gather(*(js.publish(f"orders.{i}", b"x") for i in range(count)))
            psub = await js.pull_subscribe_bind(CONSUMER, STREAM)
            acked = 0
            while acked < count:
                for msg in await psub.fetch(50, timeout=5):
                    await msg.ack()
                    acked += 1
            await conn.nc.flush()
            got = await until(lambda: _matched(api, count))
            assert got, await astats(api, "acks")
            # binomial(200, 0.5): mean 100, sd 7.1; allow 4 sd either side
            assert 72 <= got["acted"] <= 128, got
            # the server's view agrees: exactly the dropped acks are still pending
            pending = await until(lambda: _ack_pending_is(nats_server.url, got["acted"]), timeout=5)
            assert pending, await consumer_state(nats_server.url)

    run(scenario())


async def _matched(api: Api, count: int) -> dict[str, int] | None:
    got = await astats(api, "acks")
    return got if got["matched"] == count else None


async def _ack_pending_is(url: str, expected: int) -> bool:
    return (await consumer_state(url))[1] == expected


# -- (d) NAKs only ---------------------------------------------------------------------------------


def test_nak_drop_drops_naks_but_not_acks(api: Api, nats_server: NatsServer, proxied: str) -> None:
    api.toxic("nats", "nats_drop", stream="upstream", name="naks", attributes={"frames": "nak"})

    async def scenario() -> None:
        await jetstream(nats_server.url)
        async with connected(proxied) as conn:
            js = conn.nc.jetstream()
            await js.publish("orders.1", b"one")
            await js.publish("orders.2", b"two")
            psub = await js.pull_subscribe_bind(CONSUMER, STREAM)
            first, second = await psub.fetch(2, timeout=5)
            await first.nak()  # dropped: the server would redeliver at once otherwise
            await second.ack_sync(timeout=2)  # an ACK goes through
            with pytest.raises(nats.errors.TimeoutError):
                await psub.fetch(1, timeout=1)
            assert (await consumer_state(nats_server.url))[1] == 1
            got = await astats(api, "naks")
            assert got["matched"] == got["acted"] == 1, got
            await asyncio.to_thread(api.delete, "/proxies/nats/toxics/naks")
            await conn.nc.publish(first.reply, b"-NAK")  # now it reaches the server
            [again] = await psub.fetch(1, timeout=5)
            assert again.data == b"one" and again.metadata.num_delivered == 2
            await again.ack_sync(timeout=2)

    run(scenario())


# -- (e) delayed acks ------------------------------------------------------------------------------


def test_delayed_acks_while_core_request_reply_stays_fast(
    api: Api, nats_server: NatsServer, proxied: str
) -> None:
    attributes = {"frames": "ack", "delay": 300}
    api.toxic("nats", "nats_delay", stream="upstream", name="slow", attributes=attributes)

    async def scenario() -> None:
        await jetstream(nats_server.url)
        responder = await nats.connect(nats_server.url)
        await responder.subscribe("svc.echo", cb=_echo)
        await responder.flush()
        async with connected(proxied) as conn:
            js = conn.nc.jetstream()
            for i in range(3):
                await js.publish(f"orders.{i}", b"x")
            psub = await js.pull_subscribe_bind(CONSUMER, STREAM)
            for msg in await psub.fetch(3, timeout=5):
                loop = asyncio.get_running_loop()
                start = loop.time()
                ack = asyncio.ensure_future(msg.ack_sync(timeout=3))
                await asyncio.sleep(0.02)
                reply = await conn.nc.request("svc.echo", b"ping", timeout=2)
                request_done = loop.time() - start
                assert reply.data == b"ping"
                assert not ack.done() and request_done < 0.2, request_done
                await ack
                ack_done = loop.time() - start
                assert 0.28 <= ack_done <= 1.0, ack_done
        await responder.close()
        assert await consumer_state(nats_server.url) == (0, 0, 0)

    run(scenario())
    assert stats(api, "slow")["acted"] == 3


# -- (f) deliveries by subject ---------------------------------------------------------------------


def test_downstream_msg_drop_drops_only_matching_deliveries(
    api: Api, nats_server: NatsServer, proxied: str
) -> None:
    attributes = {"frames": "msg", "subject": "events.*.eu"}
    api.toxic("nats", "nats_drop", stream="downstream", name="eu", attributes=attributes)
    subjects = ["events.1.eu", "events.1.us", "events.2.eu", "events.2.eu.x", "events.3.us"]

    async def scenario() -> None:
        async with connected(proxied) as conn:
            sub = await conn.nc.subscribe("events.>")
            await conn.nc.flush()
            publisher = await nats.connect(nats_server.url)
            for subject in subjects:
                await publisher.publish(subject, subject.encode())
            await publisher.publish("events.end", b"")
            await publisher.close()
            got = []
            while (msg := await sub.next_msg(timeout=5)).subject != "events.end":
                got.append(msg.subject)
            assert got == ["events.1.us", "events.2.eu.x", "events.3.us"]

    run(scenario())
    got = stats(api, "eu")
    assert got["matched"] == got["acted"] == 2, got


# -- (g) removal while frames are held, and churn under traffic ------------------------------------


def test_removing_a_delay_delivers_the_held_ack(
    api: Api, nats_server: NatsServer, proxied: str
) -> None:
    attributes = {"frames": "ack", "delay": 30000}
    api.toxic("nats", "nats_delay", stream="upstream", name="held", attributes=attributes)

    async def scenario() -> None:
        await jetstream(nats_server.url, ack_wait=2.0)
        async with connected(proxied) as conn:
            js = conn.nc.jetstream()
            await js.publish("orders.1", b"one")
            psub = await js.pull_subscribe_bind(CONSUMER, STREAM)
            [msg] = await psub.fetch(1, timeout=5)
            loop = asyncio.get_running_loop()
            start = loop.time()
            ack = asyncio.ensure_future(msg.ack_sync(timeout=10))
            await asyncio.sleep(0.5)
            assert not ack.done()
            assert (await astats(api, "held"))["acted"] == 1
            await asyncio.to_thread(api.delete, "/proxies/nats/toxics/held")
            await ack  # the held ack went on when the toxic was removed
            assert loop.time() - start < 2.0
            # the server got it: no redelivery after ack_wait
            with pytest.raises(nats.errors.TimeoutError):
                await psub.fetch(1, timeout=3)
            await js.publish("orders.2", b"two")  # and the connection keeps working
            [msg] = await psub.fetch(1, timeout=5)
            assert msg.data == b"two"
            await msg.ack_sync(timeout=2)
        assert await consumer_state(nats_server.url) == (0, 0, 0)

    run(scenario())


TOXICS = "/proxies/nats/toxics"


def _add(
    name: str, kind: str, stream: str, toxicity: float = 1.0, **attributes: Any
) -> tuple[str, str, dict[str, Any] | None]:
    body = {"name": name, "type": kind, "stream": stream, "toxicity": toxicity}
    return "POST", TOXICS, {**body, "attributes": attributes}


# Every step keeps every frame: delays only, drops that match nothing or run at toxicity 0.
CHURN: list[tuple[str, str, dict[str, Any] | None]] = [
    _add("slicer", "slicer", "upstream", average_size=12, size_variation=6),
    _add("d1", "nats_delay", "upstream", frames="msg", subject="load.>", delay=20, jitter=10),
    _add("dd", "nats_drop", "downstream", frames="msg", subject="nomatch.>"),
    _add("acks", "nats_delay", "upstream", 0.5, frames="ack", delay=30),
    ("POST", f"{TOXICS}/d1", {"attributes": {"delay": 5}, "toxicity": 0.5}),
    _add("d0", "nats_drop", "upstream", 0, frames="acks"),
    ("DELETE", f"{TOXICS}/slicer", None),
    ("POST", f"{TOXICS}/dd", {"toxicity": 0.3}),
    ("DELETE", f"{TOXICS}/d1", None),
    ("POST", f"{TOXICS}/acks", {"attributes": {"delay": 200}}),
    ("DELETE", f"{TOXICS}/acks", None),
    ("DELETE", f"{TOXICS}/dd", None),
    ("DELETE", f"{TOXICS}/d0", None),
]


def test_toxic_churn_under_traffic_never_corrupts_the_stream(
    api: Api, nats_server: NatsServer, proxied: str
) -> None:
    """Core pub/sub and JetStream publish/fetch/ack on one proxied connection while NATS-aware
    toxics (and a slicer splitting every read) come and go; no frame may be lost or corrupted."""
    core_count = 1500

    def churn(stop: float) -> int:
        steps = 0
        while time.monotonic() < stop:
            for method, path, body in CHURN:
                response = api.request(method, path, json=body)
                assert response.status_code in (200, 204), (path, response.text)
                steps += 1
                time.sleep(0.03)
        return steps

    async def scenario() -> None:
        await jetstream(nats_server.url)
        async with connected(proxied) as conn:
            nc = conn.nc
            js = nc.jetstream()
            seen: list[int] = []

            async def record(msg: Msg) -> None:
                seen.append(int(msg.data))

            sub = await nc.subscribe("load.>", cb=record)
            await nc.flush()
            psub = await js.pull_subscribe_bind(CONSUMER, STREAM)
            churning = asyncio.ensure_future(asyncio.to_thread(churn, time.monotonic() + 4))

            async def core() -> None:
                for i in range(core_count):
                    await nc.publish(f"load.{i % 7}", b"%d" % i)
                    if i % 25 == 0:
                        await asyncio.sleep(0.01)

            async def jet() -> int:
                acked = 0
                while not churning.done():
                    await js.publish(f"orders.{acked}", b"x" * (acked % 300))
                    for msg in await psub.fetch(1, timeout=5):
                        await msg.ack_sync(timeout=5)
                        acked += 1
                return acked

            _, acked = await asyncio.gather(core(), jet())
            steps = await churning
            await nc.flush()
            assert await until(lambda: _all_seen(seen, core_count), timeout=10), len(seen)
            assert sorted(seen) == list(range(core_count))  # each exactly once
            assert acked > 10 and steps >= 13
            await sub.unsubscribe()
            assert await consumer_state(nats_server.url) == (0, 0, 0)
        assert api.get("/proxies/nats/toxics").json() == []

    run(scenario())


async def _all_seen(seen: list[int], count: int) -> bool:
    return len(seen) >= count
