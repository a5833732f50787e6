"""In-memory fakes of the adapters a run reaches its target through (Prometheus, Alertmanager,
the notification receiver, Toxiproxy, the endpoints' health probe), of the local stack and of
the workload, so `ScenarioRun` is unit-tested without a component. Live tests never use them:
there the real components answer.

    fakes = FakeTarget()
    orchestrator = Orchestrator(target, contract, "run-1", adapters=fakes.adapters(),
                                stack=fakes.stack, workload=lambda s, t: FakeWorkload())
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import anyio

from harness.adapters import Adapters
from harness.alertmanager import HeldAlert
from harness.dataloss import Durability, History, NodeState, Published, ReadMessage, StreamReadback
from harness.errors import ToxiproxyError
from harness.notifications import Notification
from harness.probes import ProbeResult
from harness.prometheus import Sample, Series
from harness.workload.ledger import LedgerSummary


class FakePrometheus:
    """A Prometheus with the alerts in `alerts_active` (Prometheus's JSON) and no series but
    the raw samples in `stored` (by selector)."""

    def __init__(self, url: str = "http://prometheus.fake") -> None:
        self.url = url
        self.stored: dict[str, list[Series]] = {}
        self.alerts_active: list[dict[str, Any]] = []
        self.rules: list[dict[str, Any]] = []
        self.queries: list[str] = []

    async def instant(self, query: str, at: float | None = None) -> list[Sample]:
        self.queries.append(query)
        return []

    async def range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        self.queries.append(query)
        return []

    async def raw_samples(self, selector: str, start: float, end: float) -> list[Series]:
        self.queries.append(selector)
        return [
            Series(s.labels, [(t, v) for t, v in s.points if start <= t <= end])
            for s in self.stored.get(selector, [])
        ]

    async def intervals(self) -> tuple[float, float]:
        return 1.0, 1.0

    async def alerts(self) -> list[dict[str, Any]]:
        return list(self.alerts_active)

    async def rule_groups(self) -> list[dict[str, Any]]:
        return list(self.rules)

    async def alerting_rule(self, name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        return None


class FakeAlertmanager:
    """An Alertmanager holding the alerts in `held` (by alert name)."""

    def __init__(self, url: str = "http://alertmanager.fake") -> None:
        self.url = url
        self.held: dict[str, list[HeldAlert]] = {}

    async def alerts(self, name: str) -> list[HeldAlert]:
        return list(self.held.get(name, []))

    async def config(self) -> dict[str, Any]:
        return {"route": {"receiver": "fake"}, "receivers": [{"name": "fake"}]}


class FakeReceiver:
    """A notification receiver that got `received`."""

    def __init__(self, url: str = "http://receiver.fake") -> None:
        self.url = url
        self.received: list[Notification] = []

    async def notifications(self, since: float = 0.0) -> list[Notification]:
        return [n for n in self.received if n.received_at >= since]


@dataclass
class FakeProxy:
    listen: str
    upstream: str
    enabled: bool = True
    toxics: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [dict(t) for t in self.toxics],
        }


class FakeToxiproxy:
    """A Toxiproxy server in memory, with the API of `ToxiproxyClient`. Adding a toxic to a
    proxy named in `hang_on` never returns (a server that stopped answering)."""

    def __init__(self, proxies: list[str], url: str = "http://toxiproxy.fake") -> None:
        self.url = url
        self.state: dict[str, FakeProxy] = {
            name: FakeProxy(f"127.0.0.1:{20000 + i}", f"127.0.0.1:{30000 + i}")
            for i, name in enumerate(proxies)
        }
        self.hang_on: set[str] = set()
        self.calls: list[str] = []

    def _proxy(self, name: str) -> FakeProxy:
        if name not in self.state:
            raise ToxiproxyError(f"{self.url}/proxies/{name}: proxy not found")
        return self.state[name]

    def toxic_names(self) -> dict[str, list[str]]:
        """Every toxic still on a proxy (scratch proxies included), by proxy."""
        return {n: [t["name"] for t in p.toxics] for n, p in self.state.items() if p.toxics}

    async def version(self) -> str:
        return "fake"

    async def proxies(self) -> dict[str, dict[str, Any]]:
        return {name: p.as_dict(name) for name, p in self.state.items()}

    async def proxy(self, name: str) -> dict[str, Any]:
        return self._proxy(name).as_dict(name)

    async def create_proxy(
        self, name: str, listen: str, upstream: str, enabled: bool = True
    ) -> dict[str, Any]:
        if name in self.state:
            raise ToxiproxyError(f"{self.url}/proxies: proxy {name} already exists")
        self.state[name] = FakeProxy(listen, upstream, enabled)
        return self.state[name].as_dict(name)

    async def delete_proxy(self, name: str) -> None:
        self._proxy(name)
        del self.state[name]

    async def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        self._proxy(name).enabled = enabled
        return self._proxy(name).as_dict(name)

    async def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return [dict(t) for t in self._proxy(proxy).toxics]

    async def add_toxic(
        self,
        proxy: str,
        *,
        name: str,
        type: str,
        stream: str,
        toxicity: float,
        attributes: dict[str, int | str],
    ) -> dict[str, Any]:
        self.calls.append(f"add_toxic {proxy} {name}")
        if proxy in self.hang_on:
            await anyio.sleep(math.inf)
        target = self._proxy(proxy)
        if any(t["name"] == name for t in target.toxics):
            raise ToxiproxyError(f"{self.url}/proxies/{proxy}/toxics: toxic {name} exists")
        toxic = {
            "name": name,
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes),
        }
        target.toxics.append(toxic)
        return dict(toxic)

    async def remove_toxic(self, proxy: str, name: str) -> None:
        self.calls.append(f"remove_toxic {proxy} {name}")
        target = self._proxy(proxy)
        if not any(t["name"] == name for t in target.toxics):
            raise ToxiproxyError(f"{self.url}/proxies/{proxy}/toxics/{name}: toxic not found")
        target.toxics = [t for t in target.toxics if t["name"] != name]

    async def reset(self) -> None:
        self.calls.append("reset")
        for p in self.state.values():
            p.enabled, p.toxics = True, []


@dataclass
class FakeProcess:
    pid: int
    running: bool = True

    def alive(self) -> bool:
        return self.running


class FakeStack:
    """A local stack of fake processes (the `Stack` protocol); `reset_error`, when set, is
    raised by `reset_alerting` (a component that did not come back)."""

    def __init__(self, components: tuple[str, ...] = ("nats", "router")) -> None:
        self.processes = {name: FakeProcess(1000 + i) for i, name in enumerate(components)}
        self.resets = 0
        self.reset_error: Exception | None = None

    def record(self, name: str) -> FakeProcess:
        return self.processes[name]

    def stop_component(self, name: str) -> None:
        self.processes[name].running = False

    async def start_component(self, name: str) -> None:
        self.processes[name] = FakeProcess(self.processes[name].pid + 100)

    async def reset_alerting(self) -> float:
        if self.reset_error is not None:
            raise self.reset_error
        self.resets += 1
        return 0.0


class FakeWorkload:
    """Traffic that is not sent: runs until stopped, then reports `ledger`. With `fail_after`
    it raises RuntimeError that many seconds after it started (a crash mid-run)."""

    def __init__(
        self, ledger: LedgerSummary | None = None, *, fail_after: float | None = None
    ) -> None:
        self.ledger = ledger or LedgerSummary(published=10, acked=10, answered=10)
        self.fail_after = fail_after
        self.stopped = anyio.Event()
        self.closed = False

    async def run(self) -> None:
        if self.fail_after is None:
            await self.stopped.wait()
            return
        with anyio.move_on_after(self.fail_after):
            await self.stopped.wait()
            return
        raise RuntimeError(f"workload crashed after {self.fail_after:g}s")

    async def stop_and_drain(self, timeout: float) -> None:
        self.stopped.set()

    async def close(self) -> None:
        self.stopped.set()
        self.closed = True

    def summary(self) -> LedgerSummary:
        return self.ledger

    def history(self) -> History:
        """Its acked publishes `fake-1`… at stream sequences 1…, as FakeStreamReader stores them."""
        return History(
            tag="fake",
            published=[Published(f"fake-{i}", i) for i in range(1, self.ledger.acked + 1)],
        )


class FakeStreamReader:
    """The stream as read back: `stored` messages (default: FakeWorkload's 10 acked publishes)
    minus the sequences in `lost`; `error` makes the read-back fail."""

    def __init__(self, stored: int = 10, *, lost: set[int] | None = None) -> None:
        self.stored = stored
        self.lost = lost or set()
        self.error: str | None = None
        self.reads: list[dict[str, Any]] = []
        self.sync_interval_s = 120.0

    async def stream_name(self, subject: str) -> str:
        return "FAKE"

    async def read(
        self, stream: str, *, start_seq: int = 1, timeout: float = 30.0
    ) -> StreamReadback:
        self.reads.append({"stream": stream, "start_seq": start_seq, "timeout": timeout})
        if self.error is not None:
            return StreamReadback(stream=stream, error=self.error)
        kept = [i for i in range(start_seq, self.stored + 1) if i not in self.lost]
        return StreamReadback(
            stream=stream,
            first_seq=start_seq,
            last_seq=self.stored,
            messages=[ReadMessage(seq=i, request_id=f"fake-{i}") for i in kept],
        )

    async def durability(self) -> list[Durability]:
        return [Durability(node="fake-1", sync_interval_s=self.sync_interval_s, sync_always=False)]

    async def nodes(self, stream: str) -> list[NodeState]:
        return [NodeState(node="fake-1", role="leader", first_seq=1, last_seq=self.stored)]


class FakeTarget:
    """One fake of each adapter of a target, and the stack; `healthy` False makes every
    endpoint probe fail."""

    def __init__(self, proxies: list[str]) -> None:
        self.prometheus = FakePrometheus()
        self.alertmanager = FakeAlertmanager()
        self.receiver = FakeReceiver()
        self.toxiproxy = FakeToxiproxy(proxies)
        self.stack = FakeStack()
        self.streams = FakeStreamReader()
        self.healthy = True

    async def health(self) -> list[ProbeResult]:
        return [
            ProbeResult(name, "fake://", self.healthy, "ok" if self.healthy else "the fake is down")
            for name in ("nats", "toxiproxy", "prometheus", "alertmanager")
        ]

    def adapters(self) -> Adapters:
        return Adapters(
            prometheus=self.prometheus,  # type: ignore[arg-type]
            alertmanager=self.alertmanager,  # type: ignore[arg-type]
            receiver=self.receiver,  # type: ignore[arg-type]
            toxiproxy=self.toxiproxy,  # type: ignore[arg-type]
            health=self.health,
            streams=self.streams,  # type: ignore[arg-type]
        )
