"""The component interface: what the local stack needs to know to run one process.

Adding a component (Toxiproxy, the router, ...) means writing one subclass: the ports it
needs, the command that starts it, the probe that proves it ready, what it adds to the
target, and what Prometheus should scrape from it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx

from harness.config import Profile


@dataclass(frozen=True)
class ScrapeJob:
    """A Prometheus scrape job a component contributes to the stack's Prometheus."""

    job: str
    address: str
    metrics_path: str = "/metrics"


@dataclass(frozen=True)
class StackOptions:
    """How the local stack's router is started: with or without the parts a router the team
    did not write may lack (the fault hook, a readiness endpoint)."""

    router_fault_hook: bool = True
    router_readyz: bool = True
    router_source: str | None = None
    """A directory holding another `router` package to run instead of ours (first on the
    router's PYTHONPATH): a modified or independently written router."""
    nats_cluster: int = 1
    """How many `nats-server` nodes: 1 is the classic single server; 3 a JetStream cluster
    whose every route and client link passes through Toxiproxy, with R3 streams."""

    @property
    def clustered(self) -> bool:
        return self.nats_cluster > 1


@dataclass
class StackContext:
    """Everything components share: the run directory, the profile and every allocated port."""

    run_dir: Path
    profile: Profile
    deploy_dir: Path
    host: str = "127.0.0.1"
    ports: dict[str, dict[str, int]] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)
    options: StackOptions = field(default_factory=StackOptions)
    sync_interval: str | None = None
    """The NATS nodes' sync interval (`always` or a duration) when a scenario set one
    (`LocalStack.set_sync_interval`); None: the server's default. Part of every node's command,
    so a node a fault restarts comes back with it too."""

    def port(self, component: str, name: str = "main") -> int:
        return self.ports[component][name]

    def address(self, component: str, name: str = "main") -> str:
        return f"{self.host}:{self.port(component, name)}"

    def url(self, component: str, name: str = "main", scheme: str = "http") -> str:
        return f"{scheme}://{self.address(component, name)}"

    def directory(self, component: str) -> Path:
        """The component's own data directory inside the run directory."""
        path = self.run_dir / component
        path.mkdir(parents=True, exist_ok=True)
        return path

    def has(self, component: str) -> bool:
        return any(c.name == component for c in self.components)


class Component(ABC):
    """One supervised process of the local stack."""

    name: ClassVar[str]
    port_names: ClassVar[tuple[str, ...]] = ("main",)
    ready_timeout: ClassVar[float] = 20.0

    def ports_needed(self, ctx: StackContext) -> tuple[str, ...]:
        """The names of the ports to allocate for it (most components: `port_names`)."""
        return self.port_names

    @abstractmethod
    def command(self, ctx: StackContext) -> list[str]:
        """The argv that starts it; writes any config file it needs first."""

    def env(self, ctx: StackContext) -> dict[str, str]:
        """Extra environment variables for the process."""
        return {}

    @abstractmethod
    async def ready(self, ctx: StackContext, client: httpx.AsyncClient) -> str:
        """Prove it serves; raise `ProbeFailed` with the reason while it does not."""

    def target_fields(self, ctx: StackContext) -> dict[str, Any]:
        """Fields of the `Target` this component provides (URLs, proxies, ...)."""
        return {}

    async def describe(self, ctx: StackContext, client: httpx.AsyncClient) -> dict[str, Any]:
        """Structured facts for `harness status --json` (a NATS node: its role and routes)."""
        return {}

    def scrape_jobs(self, ctx: StackContext) -> list[ScrapeJob]:
        """What the stack's Prometheus scrapes from this component."""
        return []
