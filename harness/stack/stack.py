"""The local embedded stack: start its components, wait until each is ready, stop them for sure.

State lives in the run directory (`stack.json`: pids, ports, logs; `target.yaml`: how the
harness addresses the stack), so `status` and `down` work from any later process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anyio
import httpx
import structlog

from harness.config import PROFILES, Profile, Target, write_target
from harness.errors import HarnessError
from harness.http import async_client
from harness.paths import deploy_dir as default_deploy_dir
from harness.probes import ProbeFailed
from harness.stack import cluster
from harness.stack.component import Component, StackContext, StackOptions
from harness.stack.components.alertmanager import Alertmanager
from harness.stack.components.nats import Nats
from harness.stack.components.nats_exporter import NatsExporter
from harness.stack.components.nats_node import NatsNode
from harness.stack.components.prometheus import Prometheus
from harness.stack.components.router import Router
from harness.stack.components.toxiproxy import Toxiproxy
from harness.stack.components.webhook import Webhook
from harness.stack.ports import free_port, port_is_free
from harness.stack.process import ProcessRecord, start_process, stop_process, tail

log = structlog.get_logger("stack")

COMPONENTS: dict[str, type[Component]] = {
    c.name: c for c in (Nats, Toxiproxy, Router, NatsExporter, Webhook, Alertmanager, Prometheus)
}
"""Every component kind, by name, in start order (Prometheus last: it scrapes the others).
A cluster's nodes (`nats-n1`, …) are `NatsNode`s named after their node."""


ALERTING = ("prometheus", "alertmanager")
REBUILD_TIMEOUT = 120.0
"""How long a slot's rebuild (down, then up from empty stores) may take: a cluster slot's
three nodes, router and Prometheus start in about 15 s on 2 cores; the rest is headroom."""


def default_components(options: StackOptions | None = None) -> list[Component]:
    """A single-node slot: exactly the classic stack. A cluster slot: its nodes instead of
    `nats`, and the NATS exporter that lets Prometheus see them."""
    options = options or StackOptions()
    if not options.clustered:
        return [cls() for cls in COMPONENTS.values() if cls is not NatsExporter]
    nodes: list[Component] = [NatsNode(n) for n in cluster.node_names(options.nats_cluster)]
    rest = [cls() for name, cls in COMPONENTS.items() if name != "nats"]
    return [*nodes, *rest]


def component_named(name: str) -> Component:
    """The component recorded under `name` in a `stack.json`."""
    node = cluster.node_of(name)
    if node is not None:
        return NatsNode(node)
    try:
        return COMPONENTS[name]()
    except KeyError:
        raise StackError(f"unknown component {name!r}") from None


class StackError(HarnessError):
    """The stack could not be brought up, or is in a state the command cannot work with."""


class ComponentFailed(StackError):
    """One component did not become ready; names it and shows the tail of its log."""

    def __init__(self, component: str, reason: str, log_path: str):
        self.component = component
        self.reason = reason
        self.log_path = log_path
        super().__init__(
            f"component {component} failed to start: {reason}\n"
            f"--- last lines of {log_path} ---\n{tail(log_path)}"
        )


@dataclass
class ComponentStatus:
    """One component as `harness status` reports it."""

    name: str
    state: str  # "up" | "down"
    pid: int | None
    url: str
    detail: str
    log: str
    facts: dict = field(default_factory=dict)
    """What the component says of itself beyond up/down (a NATS node: its roles, routes)."""


@dataclass
class StackState:
    """What `stack.json` holds: enough to find, probe and stop every process we started."""

    run_dir: str
    profile: dict
    host: str
    ports: dict[str, dict[str, int]]
    deploy_dir: str = ""
    options: dict = field(default_factory=dict)
    processes: dict[str, dict] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    sync_interval: str | None = None
    """The NATS nodes' sync interval a scenario set (`StackContext.sync_interval`)."""
    nats_restarted_at: float | None = None
    """When `set_sync_interval` last finished restarting the NATS nodes (epoch seconds): the
    alert rules' range windows remember the restart's leader changes for that long."""


class LocalStack:
    """The embedded stack in one run directory."""

    def __init__(
        self,
        run_dir: Path,
        components: Sequence[Component] | None = None,
        *,
        profile: Profile | None = None,
        deploy_dir: Path | None = None,
        host: str = "127.0.0.1",
        options: StackOptions | None = None,
    ):
        self.run_dir = Path(run_dir).resolve()
        self.components = (
            list(components) if components is not None else default_components(options)
        )
        self.ctx = StackContext(
            run_dir=self.run_dir,
            profile=profile or PROFILES["local"],
            deploy_dir=deploy_dir or default_deploy_dir(),
            host=host,
            components=self.components,
            options=options or StackOptions(),
        )
        self._popens: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def state_path(self) -> Path:
        return self.run_dir / "stack.json"

    @property
    def target_path(self) -> Path:
        return self.run_dir / "target.yaml"

    # --- state -----------------------------------------------------------------------------

    def read_state(self) -> StackState | None:
        try:
            return StackState(**json.loads(self.state_path.read_text()))
        except FileNotFoundError:
            return None

    def _write_state(self, state: StackState) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.state_path)

    def records(self, state: StackState) -> list[ProcessRecord]:
        return [ProcessRecord(**p) for p in state.processes.values()]

    @classmethod
    def attach(cls, run_dir: Path) -> LocalStack:
        """The stack recorded in `run_dir`, with the same components, ports and profile."""
        run_dir = Path(run_dir).resolve()
        try:
            raw = json.loads((run_dir / "stack.json").read_text())
        except FileNotFoundError:
            raise StackError(
                f"no local stack in {run_dir} (no stack.json): run `harness up`"
            ) from None
        state = StackState(**raw)
        try:
            components = [component_named(n) for n in state.ports]
        except StackError as exc:
            raise StackError(f"{run_dir}/stack.json: {exc}") from None
        stack = cls(
            run_dir,
            components,
            profile=Profile.model_validate(state.profile),
            host=state.host,
            deploy_dir=Path(state.deploy_dir) if state.deploy_dir else None,
            options=StackOptions(**state.options),
        )
        stack.ctx.ports = state.ports
        stack.ctx.sync_interval = state.sync_interval
        return stack

    # --- up --------------------------------------------------------------------------------

    async def up(self, ports: dict[str, dict[str, int]] | None = None) -> Target:
        """Start every component and wait until all are ready; on failure stop them all.
        `ports`: the ports to start on (a rebuild's, the same as before); new free ones
        when not given."""
        previous = self.read_state()
        if previous is not None:
            alive = [r.name for r in self.records(previous) if r.alive()]
            if alive:
                raise StackError(
                    f"a stack is already running in {self.run_dir} ({', '.join(alive)}): "
                    "run `harness down` first"
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for component in self.components:
            # A fresh stack starts from empty stores: a stale TSDB or JetStream store from an
            # earlier `up` here would show the last run's series and streams as this one's.
            shutil.rmtree(self.run_dir / component.name, ignore_errors=True)
        self.ctx.ports = ports or {
            c.name: {p: free_port(self.ctx.host) for p in c.ports_needed(self.ctx)}
            for c in self.components
        }
        state = StackState(
            run_dir=str(self.run_dir),
            profile=self.ctx.profile.model_dump(mode="json"),
            host=self.ctx.host,
            ports=self.ctx.ports,
            deploy_dir=str(self.ctx.deploy_dir),
            options=asdict(self.ctx.options),
            sync_interval=self.ctx.sync_interval,
        )
        self._write_state(state)
        started = time.monotonic()
        try:
            for component in self.components:
                self._start(component, state)
            await self._wait_all_ready(self.components)
        except BaseException:
            self.down()
            raise
        target = self.target()
        write_target(target, self.target_path)
        log.info(
            "stack_ready", run_dir=str(self.run_dir), seconds=round(time.monotonic() - started, 2)
        )
        return target

    def _start(self, component: Component, state: StackState) -> None:
        argv = component.command(self.ctx)
        log_path = self.run_dir / "logs" / f"{component.name}.log"
        popen, record = start_process(
            component.name, argv, log_path, cwd=self.run_dir, env=component.env(self.ctx)
        )
        self._popens[component.name] = popen
        state.processes[component.name] = asdict(record)
        self._write_state(state)  # before readiness: a crash of ours must not orphan it
        log.info("component_started", component=component.name, pid=record.pid, log=str(log_path))

    async def _wait_all_ready(self, components: Sequence[Component]) -> None:
        failures: list[ComponentFailed] = []
        async with async_client(2.0) as client, anyio.create_task_group() as tg:

            async def one(component: Component) -> None:
                try:
                    await self._wait_ready(component, client)
                except ComponentFailed as exc:
                    failures.append(exc)
                    tg.cancel_scope.cancel()

            for component in components:
                tg.start_soon(one, component)
        if failures:
            raise failures[0]

    async def _wait_ready(self, component: Component, client: httpx.AsyncClient) -> str:
        popen = self._own_popen(component.name)  # None: started by another process
        record = None if popen is not None else self.record(component.name)
        log_path = str(self.run_dir / "logs" / f"{component.name}.log")
        deadline = time.monotonic() + component.ready_timeout
        last = "not probed yet"
        while True:
            code = popen.poll() if popen is not None else None
            if code is not None:
                raise ComponentFailed(component.name, f"process exited with code {code}", log_path)
            if record is not None and not record.alive():
                raise ComponentFailed(component.name, "process is gone", log_path)
            try:
                with anyio.fail_after(3.0):
                    detail = await component.ready(self.ctx, client)
                log.info("component_ready", component=component.name, detail=detail)
                return detail
            except ProbeFailed as exc:
                last = str(exc)
            except TimeoutError:
                last = "readiness probe timed out after 3s"
            if time.monotonic() > deadline:
                raise ComponentFailed(
                    component.name,
                    f"not ready after {component.ready_timeout:g}s: {last}",
                    log_path,
                )
            await anyio.sleep(0.1)

    def target(self) -> Target:
        """How the harness addresses this stack."""
        fields: dict = {}
        for component in self.components:
            fields.update(component.target_fields(self.ctx))
        # A stack of some components only (a test's lone nats-server) still has a valid
        # target: what it lacks is addressed at port 1, where nothing answers.
        defaults = {
            "nats_url": "nats://127.0.0.1:1",
            "toxiproxy_url": "http://127.0.0.1:1",
            "prometheus_url": "http://127.0.0.1:1",
            "alertmanager_url": "http://127.0.0.1:1",
        }
        slot = self.run_dir.name if self.run_dir.parent.name == "slots" else None
        return Target(
            name=f"local-slot-{slot}" if slot else "local",
            kind="local",
            profile=self.ctx.profile,
            run_dir=str(self.run_dir),
            dashboards_dir=str(self.ctx.deploy_dir / "grafana" / "dashboards"),
            **{**defaults, **fields},
        )

    # --- down ------------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop every process this stack started (reverse order), and prove each is gone."""
        state = self.read_state()
        if state is None:
            return []
        stopped, stuck = [], []
        for record in reversed(self.records(state)):
            was_alive = record.alive()
            if stop_process(record, popen=self._own_popen(record.name)):
                if was_alive:
                    stopped.append(record.name)
                    log.info("component_stopped", component=record.name, pid=record.pid)
            else:
                stuck.append(f"{record.name} (pid {record.pid})")
        if stuck:
            raise StackError(f"could not stop: {', '.join(stuck)}")
        self.state_path.unlink(missing_ok=True)
        self.target_path.unlink(missing_ok=True)
        return stopped

    # --- rebuild ---------------------------------------------------------------------------

    async def rebuild(self, timeout: float = REBUILD_TIMEOUT) -> float:
        """Tear the stack down and bring it up again from empty stores on the same ports, so
        its target (every URL, every proxy) stays what the run already holds: what a run does
        to a slot a scenario left unhealthy. Bounded by `timeout`; a failure leaves the stack
        down (StackError says why). Returns the seconds it took."""
        state = self.read_state()
        if state is None:
            raise StackError(f"no local stack in {self.run_dir} to rebuild")
        started = time.monotonic()
        log.info("stack_rebuild", run_dir=str(self.run_dir))
        self.ctx.sync_interval = None  # rebuilt as the slot is configured
        try:
            with anyio.fail_after(timeout):
                await anyio.to_thread.run_sync(self.down)
                await self._ports_released(state.ports)
                await self.up(ports=state.ports)
        except TimeoutError:
            await anyio.to_thread.run_sync(self.down)
            raise StackError(
                f"rebuild of {self.run_dir}: not up again within {timeout:g}s"
            ) from None
        seconds = time.monotonic() - started
        log.info("stack_rebuilt", run_dir=str(self.run_dir), seconds=round(seconds, 2))
        return seconds

    async def _ports_released(self, ports: dict[str, dict[str, int]], within: float = 10.0) -> None:
        """Every port of the stack bindable again (the stopped processes' sockets closed)."""
        wanted = sorted({p for named in ports.values() for p in named.values()})
        deadline = time.monotonic() + within
        while True:
            taken = [p for p in wanted if not port_is_free(p, self.ctx.host)]
            if not taken:
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"cannot rebuild {self.run_dir} on its ports: {', '.join(map(str, taken))} "
                    f"still taken {within:g}s after the stack stopped"
                )
            await anyio.sleep(0.2)

    # --- one component (process faults, tests) ---------------------------------------------

    def component(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        raise StackError(f"no component {name!r} in this stack")

    def _own_popen(self, name: str) -> subprocess.Popen[bytes] | None:
        """This object's handle on `name`'s process, unless another process has started it
        again since (a `harness run` rebuilding the slot): then stack.json's record is the
        truth, and the old handle only says the old process exited."""
        popen = self._popens.get(name)
        state = self.read_state()
        raw = state.processes.get(name) if state is not None else None
        if popen is None or raw is None or ProcessRecord(**raw).pid != popen.pid:
            return None
        return popen

    def record(self, name: str) -> ProcessRecord:
        state = self.read_state()
        if state is None or name not in state.processes:
            raise StackError(f"component {name!r} was not started in {self.run_dir}")
        return ProcessRecord(**state.processes[name])

    def stop_component(self, name: str) -> None:
        """Stop one component; its ports stay reserved for `start_component`."""
        if not stop_process(self.record(name), popen=self._own_popen(name)):
            raise StackError(f"could not stop {name}")
        log.info("component_stopped", component=name)

    async def start_component(self, name: str) -> None:
        """Start one stopped component again on the same ports, and wait until it is ready."""
        component = self.component(name)
        state = self.read_state()
        if state is None:
            raise StackError(f"no local stack in {self.run_dir}")
        if self.record(name).alive():
            raise StackError(f"{name} is already running")
        self._start(component, state)
        await self._wait_all_ready([component])

    def nats_components(self) -> list[str]:
        """The names of the stack's NATS servers (`nats`, or a cluster's `nats-n1`, …)."""
        return [c.name for c in self.components if isinstance(c, Nats | NatsNode)]

    async def set_sync_interval(
        self,
        value: str | None,
        order: Sequence[str] | None = None,
        settle: Callable[[str], Awaitable[None]] | None = None,
    ) -> list[str]:
        """Run every NATS server with sync interval `value` (`always`, a duration; None: the
        server's default) by restarting it: nats-server cannot reload the setting. One node
        at a time, each ready again (a cluster node: healthy and routed to every peer) and
        `settle`d (a cluster: whole again) before the next stops, so a cluster keeps its quorum
        and clients a server to reconnect to; JetStream state stays in the store directories.
        `order`: the components in restart order (a caller that knows the leaders restarts
        them last, so each leadership moves once). Returns the components restarted."""
        state = self.read_state()
        if state is None:
            raise StackError(f"no local stack in {self.run_dir}")
        self.ctx.sync_interval = state.sync_interval = value
        self._write_state(state)  # before restarting: a node a fault restarts gets it too
        names = self.nats_components()
        ordered = [n for n in order or () if n in names]
        ordered += [n for n in names if n not in ordered]
        restarted = []
        for name in ordered:
            if self.record(name).alive():
                await anyio.to_thread.run_sync(self.stop_component, name)
            await self.start_component(name)
            if settle is not None:
                await settle(name)
            restarted.append(name)
        state = self.read_state() or state
        state.nats_restarted_at = time.time()
        self._write_state(state)
        log.info("nats_sync_interval", value=value or "default", restarted=restarted)
        return restarted

    async def reset_alerting(self) -> float:
        """Fresh alert state for the next scenario: Prometheus reloads its rules as new rule
        groups (scrapes and TSDB untouched) and Alertmanager restarts with its notification
        log and silences wiped.

        Why: Prometheus re-sends a resolved alert for 15 minutes of wall-clock time (a constant
        no profile compresses: 7.5 production hours at factor 30), which keeps its Alertmanager
        group alive; a short re-fire of the same alert in the next scenario can then fall
        between two group_interval ticks and never be notified. A fresh stack has no such
        state; every scenario on a slot gets the same. Returns the seconds it took."""
        started = time.monotonic()
        async with async_client(5.0) as client:
            if self.ctx.has("prometheus"):
                prometheus = self.component("prometheus")
                assert isinstance(prometheus, Prometheus)
                prometheus.write_config(self.ctx, f"rules-{time.time_ns()}")
                url = self.ctx.url("prometheus")
                try:
                    response = await client.post(f"{url}/-/reload")
                except httpx.HTTPError as exc:
                    raise StackError(f"POST {url}/-/reload: {exc}") from exc
                if response.status_code != 200:
                    raise StackError(f"POST {url}/-/reload: {response.status_code} {response.text}")
            if self.ctx.has("alertmanager"):
                await anyio.to_thread.run_sync(self.stop_component, "alertmanager")
                shutil.rmtree(self.run_dir / "alertmanager" / "data", ignore_errors=True)
                state = self.read_state()
                if state is None:
                    raise StackError(f"no local stack in {self.run_dir}")
                self._start(self.component("alertmanager"), state)
        # Prometheus too: ready again once it scrapes the restarted Alertmanager.
        await self._wait_all_ready([c for c in self.components if c.name in ALERTING])
        return time.monotonic() - started

    # --- status ----------------------------------------------------------------------------

    async def status(self) -> list[ComponentStatus]:
        """Each component up (process alive and probe answering) or down, with why."""
        state = self.read_state()
        if state is None:
            raise StackError(f"no local stack in {self.run_dir} (no stack.json): run `harness up`")
        results: list[ComponentStatus] = []
        async with async_client(2.0) as client:
            for component in self.components:
                raw = state.processes.get(component.name)
                url = self._display_url(component)
                if raw is None:
                    results.append(
                        ComponentStatus(component.name, "down", None, url, "not started", "")
                    )
                    continue
                record = ProcessRecord(**raw)
                if not record.alive():
                    detail = f"process {record.pid} is not running"
                    results.append(
                        ComponentStatus(component.name, "down", record.pid, url, detail, record.log)
                    )
                    continue
                try:
                    with anyio.fail_after(3.0):
                        detail = await component.ready(self.ctx, client)
                    state_name = "up"
                except ProbeFailed as exc:
                    state_name, detail = "down", str(exc)
                except TimeoutError:
                    state_name, detail = "down", "probe timed out after 3s"
                facts: dict = {}
                with anyio.move_on_after(3.0):
                    facts = await component.describe(self.ctx, client)
                results.append(
                    ComponentStatus(
                        component.name, state_name, record.pid, url, detail, record.log, facts
                    )
                )
        return results

    def _display_url(self, component: Component) -> str:
        fields = component.target_fields(self.ctx)
        urls = [v for v in fields.values() if isinstance(v, str) and "://" in v]
        return urls[0] if urls else self.ctx.url(component.name)
