"""Target and profile settings: where the stack under test lives and how time is compressed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from harness.durations import Duration
from harness.yamlfile import load_model


class Strict(BaseModel):
    """Base for file-backed models: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


MIN_DEADLINE_S = 10.0


class Profile(Strict):
    """How fast the observability stack runs; evidence records it with every verdict."""

    name: str = "local"
    time_compression: float = Field(
        30.0, ge=1.0, description="every rule `for:` and range window is divided by this"
    )
    scrape_interval: Duration = 1.0
    evaluation_interval: Duration = 1.0
    min_range: Duration = Field(
        4.0, description="floor for compressed range windows, so rate() always sees samples"
    )

    def compress(self, seconds: float) -> float:
        """A production duration on this profile's clock (the one clock of rules, contract
        and scenarios)."""
        return seconds / self.time_compression

    def deadline(self, seconds: float) -> float:
        """A production timeout on this clock; never below 10 s, as it also bounds API calls."""
        return max(MIN_DEADLINE_S, self.compress(seconds))


PROFILES: dict[str, Profile] = {
    "local": Profile(),
    "staging": Profile(
        name="staging", time_compression=1.0, scrape_interval="15s", evaluation_interval="15s"
    ),
}


def _check_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"must be a URL like {schemes[0]}://host:port, got {value!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in {value!r} (a port is 1..65535)") from exc
    if port == 0:
        raise ValueError(f"bad port in {value!r} (a port is 1..65535)")
    return value.rstrip("/")


def _check_address(value: str | None) -> str | None:
    """`host:port` with a port in 1..65535 (`[::1]:4222` for IPv6)."""
    if value is None:
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"must be host:port with a port in 1..65535, got {value!r}")
    return value


Address = Annotated[str | None, AfterValidator(_check_address)]


class ProxySpec(Strict):
    """A Toxiproxy proxy the scenarios may fault; addresses are informative for external stacks."""

    listen: Address = None
    upstream: Address = None


HttpUrl = Annotated[str, AfterValidator(lambda v: _check_url(v, ("http", "https")))]
NatsUrl = Annotated[str, AfterValidator(lambda v: _check_url(v, ("nats", "tls")))]


class NatsNodeSpec(Strict):
    """One node of a NATS cluster target."""

    name: str = Field(description="the node's short name (n1, n2, ...)")
    server_name: str = Field(description="its `server_name`, the name /jsz reports leaders by")
    client_url: NatsUrl = Field(description="how clients reach it (locally: its client proxy)")
    monitor_url: HttpUrl = Field(description="its monitoring port (/varz, /routez, /jsz)")
    client_proxy: str | None = Field(None, description="the Toxiproxy proxy of its client link")
    route_proxies: list[str] = Field(
        default_factory=list,
        description="every Toxiproxy proxy carrying a route of this node, both directions",
    )


class NatsTopology(Strict):
    """What NATS the target runs: one server, or a JetStream cluster."""

    kind: Literal["single", "cluster"] = "single"
    cluster_name: str | None = None
    stream_replicas: int = Field(1, ge=1, le=5, description="replicas of the router's streams")
    nodes: list[NatsNodeSpec] = Field(default_factory=list)
    system_user: str | None = Field(
        None,
        description="`user:password` of the cluster's system account, for meta-group requests "
        "(a meta leader stepdown); None: the harness cannot make them",
    )


class Target(Strict):
    """The stack under test, as the harness addresses it."""

    name: str
    kind: Literal["local", "external"] = "external"
    nats_url: NatsUrl
    nats_urls: list[NatsUrl] = Field(
        default_factory=list,
        description="every NATS URL clients may use (a cluster's nodes); empty: nats_url alone",
    )
    topology: NatsTopology = Field(default_factory=NatsTopology)
    toxiproxy_url: HttpUrl
    prometheus_url: HttpUrl
    alertmanager_url: HttpUrl
    router_metrics_urls: list[HttpUrl] = Field(default_factory=list)
    webhook_url: HttpUrl | None = Field(
        None, description="the notification receiver Alertmanager posts to, if the harness hosts it"
    )
    proxies: dict[str, ProxySpec] = Field(default_factory=dict)
    profile: Profile = Field(default_factory=lambda: PROFILES["staging"])
    run_dir: str | None = Field(None, description="local stacks only: where logs and data live")
    dashboards_dir: str | None = Field(
        None, description="the Grafana dashboards this stack serves [deploy/grafana/dashboards]"
    )
    router_decide_urls: list[HttpUrl] = Field(
        default_factory=list,
        description="the routers' synchronous decide endpoints, if they have one (POST)",
    )
    router_ready_urls: list[HttpUrl] = Field(
        default_factory=list,
        description="readiness URLs of the routers, if they have one (else /metrics decides)",
    )

    @property
    def nats_servers(self) -> list[str]:
        """The URLs a client of this target connects with (all of a cluster's nodes)."""
        return list(self.nats_urls) or [self.nats_url]


def load_target(path: Path | str) -> Target:
    """Read a target file; every problem is reported with its line and field."""
    return load_model(Target, path)


def write_target(target: Target, path: Path) -> None:
    """Write a target file that `load_target` reads back unchanged."""
    data = target.model_dump(mode="json", exclude_none=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
