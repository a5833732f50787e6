"""Read a stream back after heal, independently of the router: an ordered consumer of the
harness's own (no acks, no durable state, so the router's consumer is untouched), and each
node's own view of the stream from its monitoring endpoint.

What it observes goes into `dataloss.StreamReadback`; the judging is `dataloss.judge_loss`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import anyio
import httpx
import nats
from nats.errors import Error as NatsClientError
from nats.js.errors import Error as JetStreamClientError

from harness.dataloss import NodeState, ReadMessage, StreamReadback
from harness.errors import describe
from harness.http import async_client


def _request_id(data: bytes) -> str | None:
    try:
        body = json.loads(data)
    except ValueError:
        return None
    rid = body.get("request_id") if isinstance(body, dict) else None
    return rid if isinstance(rid, str) else None


async def read_stream(
    servers: Sequence[str], stream: str, *, timeout: float = 30.0, idle: float = 2.0
) -> StreamReadback:
    """Every message of `stream` from its first to its last sequence at the time of reading.

    Stops when the last sequence is reached, or after `idle` seconds without a message (the
    rest is then missing, which is what the judge counts), or at `timeout` (an error: the
    read-back is incomplete, so loss cannot be judged).
    """
    started = time.monotonic()
    result = StreamReadback(stream=stream)
    try:
        with anyio.fail_after(10):  # nats-py retries an unreachable server for minutes
            nc = await nats.connect(
                servers=list(servers),
                name="harness-readback",
                connect_timeout=3,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.5,
            )
    except (OSError, NatsClientError, TimeoutError) as exc:
        result.error = f"connect to {', '.join(servers)}: {describe(exc) or 'no answer in 10 s'}"
        return result
    try:
        js = nc.jetstream(timeout=5)
        info = await js.stream_info(stream)
        result.first_seq, result.last_seq = info.state.first_seq, info.state.last_seq
        if info.state.messages == 0:
            return result
        subject = info.config.subjects[0] if info.config.subjects else ">"
        sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
        with anyio.fail_after(timeout):
            while True:
                try:
                    msg = await sub.next_msg(timeout=idle)
                except TimeoutError:
                    break
                seq = msg.metadata.sequence.stream
                result.messages.append(ReadMessage(seq=seq, request_id=_request_id(msg.data)))
                if seq >= result.last_seq:
                    break
        await sub.unsubscribe()
    except TimeoutError:
        result.error = f"reading {stream} took longer than {timeout:g} s"
    except (OSError, NatsClientError, JetStreamClientError) as exc:
        result.error = f"reading {stream} through {', '.join(servers)}: {describe(exc)}"
    finally:
        result.seconds = round(time.monotonic() - started, 3)
        await nc.close()
    return result


async def node_states(monitors: dict[str, str], stream: str) -> list[NodeState]:
    """Each node's own view of `stream` (`/jsz?streams=true`): how many messages, which
    sequences, whether it leads and whether its replica is current."""
    states: list[NodeState] = []
    async with async_client(timeout=5) as client:
        for node, url in monitors.items():
            state = NodeState(node=node)
            try:
                response = await client.get(
                    f"{url.rstrip('/')}/jsz", params={"streams": "true", "raft": "true"}
                )
                response.raise_for_status()
                _fill(state, response.json(), stream)
            except (httpx.HTTPError, ValueError) as exc:
                state.error = f"GET {url}/jsz: {describe(exc)}"
            states.append(state)
    return states


def _fill(state: NodeState, jsz: dict, stream: str) -> None:
    for account in jsz.get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail.get("name") != stream:
                continue
            s = detail.get("state") or {}
            state.messages = s.get("messages")
            state.first_seq = s.get("first_seq")
            state.last_seq = s.get("last_seq")
            cluster = detail.get("cluster") or {}
            leader = cluster.get("leader")
            name = jsz.get("server_name")
            if leader and leader == name:
                state.role = "leader"
            else:
                state.role = "replica"
                for replica in cluster.get("replicas") or []:
                    if replica.get("name") == name:
                        state.current = replica.get("current")
            return
    state.error = f"the node does not hold stream {stream}"
