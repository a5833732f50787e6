"""Read a stream back after heal, independently of the router: an ordered consumer of the
harness's own (no acks, no durable state, so the router's consumer is untouched), each node's
own view of the stream and its durability settings from its monitoring endpoint.

`StreamReader` is the adapter a run holds (`harness.adapters.Adapters.streams`; a fake in
`harness.testing`). What it observes goes into `dataloss.StreamReadback` and
`dataloss.Durability`; the judging is `dataloss.judge_loss`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import nats
from nats.errors import Error as NatsClientError
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamClientError
from nats.js.errors import NotFoundError

from harness.dataloss import Durability, NodeState, ReadMessage, StreamReadback
from harness.errors import NatsAdminError, describe
from harness.http import async_client

if TYPE_CHECKING:
    from harness.config import Target


class StreamReader:
    """A target's streams as the data-loss check reads them: through its NATS servers (all
    of a cluster's nodes) and each node's monitoring endpoint."""

    def __init__(
        self,
        servers: Sequence[str],
        monitors: dict[str, str] | None = None,
        *,
        target: Target | None = None,
    ):
        self.servers = list(servers)
        self._monitors = monitors
        self._target = target

    @classmethod
    def for_target(cls, target: Target) -> StreamReader:
        """A target's reader; its monitors are looked up when first needed (after `up`)."""
        return cls(getattr(target, "nats_servers", None) or [target.nats_url], target=target)

    @property
    def monitors(self) -> dict[str, str]:
        if self._monitors is None:
            self._monitors = monitors_of(self._target) if self._target is not None else {}
        return self._monitors

    async def stream_name(self, subject: str) -> str:
        return await stream_name(self.servers, subject)

    async def read(
        self, stream: str, *, start_seq: int = 1, timeout: float = 30.0
    ) -> StreamReadback:
        return await read_stream(self.servers, stream, start_seq=start_seq, timeout=timeout)

    async def durability(self) -> list[Durability]:
        return await durability(self.monitors)

    async def nodes(self, stream: str) -> list[NodeState]:
        return await node_states(self.monitors, stream)


def _request_id(data: bytes) -> str | None:
    try:
        body = json.loads(data)
    except ValueError:
        return None
    rid = body.get("request_id") if isinstance(body, dict) else None
    return rid if isinstance(rid, str) else None


FIRST_MESSAGE_WITHIN = 10.0


async def read_stream(
    servers: Sequence[str],
    stream: str,
    *,
    start_seq: int = 1,
    timeout: float = 30.0,
    idle: float = 2.0,
) -> StreamReadback:
    """Every message of `stream` from `start_seq` (or its first sequence, if later) to its last
    sequence at the time of reading. A run reads from its own first acknowledged sequence: what
    earlier runs left in the stream is not its to judge.

    Stops when the last sequence is reached, or after `idle` seconds without a message (the
    rest is then missing, which is what the judge counts), or at `timeout` (an error: the
    read-back is incomplete, so loss cannot be judged). No message at all within
    FIRST_MESSAGE_WITHIN seconds, from a stream whose state lists some, is an error too.
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
        result.first_seq = max(info.state.first_seq, start_seq)
        result.last_seq = info.state.last_seq
        if info.state.messages == 0 or result.first_seq > result.last_seq:
            return result
        subjects = info.config.subjects or []
        sub = await js.subscribe(
            subjects[0] if len(subjects) == 1 else ">",
            stream=stream,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=result.first_seq
            ),
        )
        with anyio.fail_after(timeout):
            while True:
                # the first message may take a while (a consumer placed while the cluster
                # settles after a restart); after it, `idle` without one means the rest is gone
                wait = idle if result.messages else min(FIRST_MESSAGE_WITHIN, timeout)
                try:
                    msg = await sub.next_msg(timeout=wait)
                except TimeoutError:
                    break
                seq = msg.metadata.sequence.stream
                result.messages.append(ReadMessage(seq=seq, request_id=_request_id(msg.data)))
                if seq >= result.last_seq:
                    break
        await sub.unsubscribe()
        read = {m.seq for m in result.messages}
        undelivered = [q for q in range(result.first_seq, result.last_seq + 1) if q not in read]
        if undelivered:
            # The stream says it holds them, so a consumer's silence is no proof of loss: an
            # ordered consumer is served by one replica, and one restarted on a damaged block
            # (CL-007) delivered nothing, or 17 of 1355 and then nothing. Ask the stream
            # leader for each sequence the consumer did not deliver.
            result.note = _undelivered_note(stream, result, len(undelivered))
            result.read_by = "msg_get"
            with anyio.fail_after(max(1.0, timeout - (time.monotonic() - started))):
                got = await read_by_get(js, stream, undelivered)
            result.messages = sorted([*result.messages, *got], key=lambda m: m.seq)
    except TimeoutError:
        result.error = f"reading {stream} took longer than {timeout:g} s"
    except (OSError, NatsClientError, JetStreamClientError) as exc:
        result.error = f"reading {stream} through {', '.join(servers)}: {describe(exc)}"
    finally:
        result.seconds = round(time.monotonic() - started, 3)
        await nc.close()
    return result


GET_AT_ONCE = 32


def _undelivered_note(stream: str, result: StreamReadback, undelivered: int) -> str:
    span = f"seq {result.first_seq}-{result.last_seq}"
    if not result.messages:
        return (
            f"the ordered consumer delivered no message of {stream} in "
            f"{FIRST_MESSAGE_WITHIN:g} s although it holds {span}"
        )
    return (
        f"the ordered consumer delivered {len(result.messages)} of {stream}'s {span} (the "
        f"last at seq {result.messages[-1].seq}); the other {undelivered} were asked of "
        "the stream leader"
    )


async def read_by_get(js: Any, stream: str, seqs: Sequence[int]) -> list[ReadMessage]:
    """Each of `seqs` asked of the stream leader (STREAM.MSG.GET), a few at a time; a
    sequence it does not have is left out (missing, for the judge)."""
    found: dict[int, ReadMessage] = {}
    failed: list[Exception] = []
    limiter = anyio.CapacityLimiter(GET_AT_ONCE)

    async def one(seq: int) -> None:
        async with limiter:
            if failed:
                return
            try:
                msg = await js.get_msg(stream, seq)
            except NotFoundError:
                return
            except (OSError, NatsClientError, JetStreamClientError, TimeoutError) as exc:
                failed.append(exc)  # raised bare below, not inside the task group's group
                return
            found[seq] = ReadMessage(seq=seq, request_id=_request_id(msg.data or b""))

    async with anyio.create_task_group() as tg:
        for seq in seqs:
            tg.start_soon(one, seq)
    if failed:
        raise failed[0]
    return [found[seq] for seq in sorted(found)]


async def stream_name(servers: Sequence[str], subject: str) -> str:
    """The stream a subject lands in, as the server says (an AdapterError when it cannot)."""
    try:
        with anyio.fail_after(10):
            nc = await nats.connect(
                servers=list(servers), connect_timeout=3, max_reconnect_attempts=1
            )
    except (OSError, NatsClientError, TimeoutError) as exc:
        raise NatsAdminError(
            f"connect to {', '.join(servers)}: {describe(exc) or 'no answer in 10 s'}"
        ) from exc
    try:
        return await nc.jetstream(timeout=5).find_stream_name_by_subject(subject)
    except (OSError, NatsClientError, JetStreamClientError) as exc:
        raise NatsAdminError(f"which stream holds {subject}: {describe(exc)}") from exc
    finally:
        await nc.close()


def monitors_of(target: Target) -> dict[str, str]:
    """Each NATS node's monitoring URL, by node name: a cluster target lists its nodes; a local
    single-node stack's port is in its `stack.json`; an external single server says none."""
    topology = getattr(target, "topology", None)
    nodes = getattr(topology, "nodes", None) or []
    if nodes:
        return {n.name: str(n.monitor_url) for n in nodes}
    if target.kind != "local" or not target.run_dir:
        return {}
    try:
        state = json.loads((Path(target.run_dir) / "stack.json").read_text())
    except (OSError, ValueError):
        return {}
    host = state.get("host", "127.0.0.1")
    return {
        name: f"http://{host}:{ports['monitor']}"
        for name, ports in (state.get("ports") or {}).items()
        if name.startswith("nats") and "monitor" in ports
    }


async def durability(monitors: dict[str, str]) -> list[Durability]:
    """Each node's settings that trade durability for speed, from `/varz`: how often it
    fsyncs its store (`sync_interval`; nats-server's default is 2 minutes) or whether it
    fsyncs every write (`sync_always`)."""
    found: list[Durability] = []
    async with async_client(timeout=5) as client:
        for node, url in monitors.items():
            entry = Durability(node=node)
            try:
                response = await client.get(f"{url.rstrip('/')}/varz")
                response.raise_for_status()
                varz = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                entry.error = f"GET {url}/varz: {describe(exc)}"
            else:
                config = (varz.get("jetstream") or {}).get("config") or {}
                entry.server_name = varz.get("server_name")
                entry.version = varz.get("version")
                entry.sync_interval_s = _seconds(config.get("sync_interval"))
                entry.sync_always = bool(config.get("sync_always"))  # omitted when false
                entry.store_dir = config.get("store_dir")
            found.append(entry)
    return found


def _seconds(value: object) -> float | None:
    """/varz gives durations in nanoseconds (Go's time.Duration)."""
    return round(value / 1e9, 3) if isinstance(value, int | float) else None


async def node_states(monitors: dict[str, str], stream: str) -> list[NodeState]:
    """Each node's own view of `stream` (`/jsz?streams=true`): how many messages, which
    sequences, whether it leads and whether its replica is current."""
    states: list[NodeState] = []
    async with async_client(timeout=5) as client:
        for node, url in monitors.items():
            state = NodeState(node=node)
            try:
                # /jsz names leaders by server name but not itself: /varz says who it is
                varz = await client.get(f"{url.rstrip('/')}/varz")
                varz.raise_for_status()
                response = await client.get(
                    f"{url.rstrip('/')}/jsz", params={"streams": "true", "raft": "true"}
                )
                response.raise_for_status()
                _fill(state, response.json(), stream, varz.json().get("server_name"))
            except (httpx.HTTPError, ValueError) as exc:
                state.error = f"GET {url}: {describe(exc)}"
            states.append(state)
    return states


def _fill(state: NodeState, jsz: dict, stream: str, name: str | None) -> None:
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
            if not leader:  # a single server: no cluster, no replicas
                return
            if leader == name:
                state.role = "leader"
            else:
                state.role = "replica"
                for replica in cluster.get("replicas") or []:
                    if replica.get("name") == name:
                        state.current = replica.get("current")
            return
    state.error = f"the node does not hold stream {stream}"
