"""Reading a stream back from a real nats-server, and judging it: messages removed on the
server after they were acknowledged are reported lost, with their sequence ranges."""

from __future__ import annotations

import json
from functools import partial

import anyio
import nats
import pytest

from harness.dataloss import Published, judge_loss
from harness.readback import read_stream

pytestmark = pytest.mark.live


async def _publish(url: str, n: int) -> list[Published]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="READBACK", subjects=["readback.>"])
        published = []
        for i in range(1, n + 1):
            rid = f"rb-{i}"
            ack = await js.publish("readback.x", json.dumps({"request_id": rid}).encode())
            published.append(Published(rid, ack.seq))
        return published
    finally:
        await nc.close()


async def _delete(url: str, seqs: list[int]) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for seq in seqs:
            await js.delete_msg("READBACK", seq)
    finally:
        await nc.close()


def test_read_back_whole_stream_then_detect_removed_messages(nats_server) -> None:
    url = nats_server.url

    async def scenario() -> None:
        published = await _publish(url, 200)
        intact = judge_loss(published, await read_stream([url], "READBACK"), tag="rb")
        assert (intact.acked, intact.read, intact.lost) == (200, 200, 0)

        await _delete(url, [1, 2, 50, 51, 52, 200])
        readback = await read_stream([url], "READBACK", idle=1.0)
        report = judge_loss(published, readback, tag="rb")
        assert report.lost == 6
        assert report.lost_prefix == ["rb-1", "rb-2"]
        assert report.lost_middle == ["rb-50", "rb-51", "rb-52"]
        assert report.lost_suffix == ["rb-200"]
        assert [str(r) for r in report.lost_ranges] == ["1-2", "50-52", "200"]

    anyio.run(scenario)


def test_an_unreachable_server_is_an_error() -> None:
    readback = anyio.run(read_stream, ["nats://127.0.0.1:1"], "READBACK")
    assert readback.error and "127.0.0.1:1" in readback.error
    assert not judge_loss([Published("rb-1", 1)], readback, tag="rb").evaluable


def _silent_consumers(monkeypatch: pytest.MonkeyPatch, after: int = 0) -> None:
    """Every ordered consumer delivers `after` messages, then nothing, as one placed on a
    replica that cannot serve it (seen after CL-007 damaged a follower's block file: none, or
    17 of 1355)."""
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.client import JetStreamContext

    from harness import readback

    subscribe = JetStreamContext.subscribe

    async def silent(self: JetStreamContext, *args: object, **kwargs: object) -> object:
        sub = await subscribe(self, *args, **kwargs)  # type: ignore[arg-type]

        delivered = 0
        next_msg = sub.next_msg

        async def then_nothing(timeout: float = 1.0) -> object:
            nonlocal delivered
            if delivered < after:
                delivered += 1
                return await next_msg(timeout=timeout)
            await anyio.sleep(timeout)
            raise NatsTimeout

        sub.next_msg = then_nothing  # type: ignore[method-assign]
        return sub

    monkeypatch.setattr(JetStreamContext, "subscribe", silent)
    monkeypatch.setattr(readback, "FIRST_MESSAGE_WITHIN", 0.5)


def test_a_consumer_that_delivers_nothing_is_read_again_from_the_leader(
    nats_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Silence from a consumer proves nothing about the stream: each sequence is asked of the
    stream leader instead, and what it does not have is missing, judged as loss."""
    published = anyio.run(_publish, nats_server.url, 40)
    anyio.run(_delete, nats_server.url, [7, 40])
    _silent_consumers(monkeypatch)
    result = anyio.run(read_stream, [nats_server.url], "READBACK")
    assert result.error is None, result.error
    assert result.read_by == "msg_get" and result.note and "seq 1-40" in result.note
    assert [m.seq for m in result.messages] == [s for s in range(1, 41) if s not in (7, 40)]
    report = judge_loss(published, result, tag="rb")
    assert report.evaluable and report.lost == 2 and report.lost_suffix == ["rb-40"]


def test_a_consumer_that_stalls_midway_has_the_rest_read_from_the_leader(
    nats_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer that delivers a few messages and then stops: the sequences it did not
    deliver are asked of the leader, so only what the leader lacks is lost."""
    published = anyio.run(_publish, nats_server.url, 40)
    anyio.run(_delete, nats_server.url, [3, 30])
    _silent_consumers(monkeypatch, after=10)
    result = anyio.run(partial(read_stream, [nats_server.url], "READBACK", idle=0.5))
    assert result.error is None, result.error
    assert result.read_by == "msg_get" and result.note
    # seq 3 was deleted before the read: the consumer skipped it, and so did the leader
    assert "delivered 10 of READBACK's seq 1-40 (the last at seq 11)" in result.note
    assert [m.seq for m in result.messages] == [s for s in range(1, 41) if s not in (3, 30)]
    report = judge_loss(published, result, tag="rb")
    assert report.evaluable and report.lost == 2
    assert report.lost_middle == ["rb-3", "rb-30"]


def test_a_stream_the_leader_cannot_answer_either_is_an_error_not_a_loss(
    nats_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.manager import JetStreamManager

    published = anyio.run(_publish, nats_server.url, 5)
    _silent_consumers(monkeypatch)

    async def no_answer(self: JetStreamManager, *args: object, **kwargs: object) -> None:
        raise NatsTimeout

    monkeypatch.setattr(JetStreamManager, "get_msg", no_answer)
    result = anyio.run(read_stream, [nats_server.url], "READBACK")
    assert result.error is not None and "READBACK" in result.error, result.error
    assert not judge_loss(published, result, tag="rb").evaluable
