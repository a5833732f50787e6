"""Router settings, declared once: each field of `Config` gives its default, type, parser and
help; the `--flag`, the ROUTER_* environment variable and the `--help` line are derived from it.

Flags win over ROUTER_* env vars (pydantic-settings: init values over the environment), which
win over the defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "ROUTER_"


def _csv(value: Any) -> Any:
    """`a, b,c` → ["a", "b", "c"]; lists pass through (defaults, programmatic use)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _bool(value: Any) -> Any:
    """1/true/yes/on and 0/false/no/off (any case; empty is false); bools pass through."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _providers(value: Any) -> Any:
    """`name:weight,...` (weight defaults to 1) → [(name, weight)], total weight > 0."""
    if not isinstance(value, str):
        return value
    result: list[tuple[str, int]] = []
    for part in _csv(value):
        name, _, weight = part.partition(":")
        result.append((name.strip(), int(weight) if weight else 1))
    if not result or any(w < 0 for _, w in result) or sum(w for _, w in result) == 0:
        raise ValueError(f"providers need positive total weight: {value!r}")
    return result


# Field types whose text form is not JSON: NoDecode keeps pydantic-settings from json-decoding
# the env var, the validator parses what the flag and the env var both give.
Bool = Annotated[bool, BeforeValidator(_bool)]
Csv = Annotated[list[str], NoDecode, BeforeValidator(_csv)]
Floats = Annotated[list[float], NoDecode, BeforeValidator(_csv)]
Providers = Annotated[list[tuple[str, int]], NoDecode, BeforeValidator(_providers)]


def setting(default: Any, help: str, *, flag: str | None = None) -> Any:
    """One setting: its default, its `--help` text and, when not `--<field-name>`, its flag."""
    extra = {"flag": flag} if flag else None
    if isinstance(default, list):
        value = list(default)
        return Field(default_factory=lambda: list(value), description=help, json_schema_extra=extra)
    return Field(default, description=help, json_schema_extra=extra)


class Config(BaseSettings):
    """Everything the router needs; defaults follow the catalogue's documented intent (§6.3)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    nats_url: str = setting(
        "nats://127.0.0.1:4222",
        "NATS server URL, or a cluster's URLs comma-separated (through Toxiproxy proxies in "
        "the local stack)",
    )
    nats_cluster: str = setting("default", "value of the `cluster` label on connect failures")
    subject: str = setting(
        "beamline.router.v1.decide",
        "decide subject; replies default to <subject>.reply, DLQ is <subject>.dlq",
    )
    usage_events: Bool = setting(
        True,
        "publish a usage event (core NATS) per successful decision, JetStream and HTTP; "
        "queued while disconnected like replies",
    )
    usage_subject: str = setting(
        "beamline.usage.v1.metered", "subject of the usage events (catalogue §6.2)"
    )
    stream: str = setting("router-stream", "stream holding the decide subject (created if missing)")
    dlq_stream: str = setting("router-dlq", "stream holding <subject>.dlq (created if missing)")
    consumer: str = setting("router-decide-consumer", "durable pull consumer name")
    stream_storage: str = setting("file", "storage of created streams: file or memory")
    stream_replicas: int = setting(
        1, "replicas of created streams (1 for a single server, 3 on a 3-node cluster)"
    )
    ack_wait: float = setting(30.0, "consumer ack_wait in seconds (short for time-compressed runs)")
    max_deliver: int = setting(
        5, "consumer max_deliver; at this delivery a failing message goes to the DLQ"
    )
    backoff: Floats = setting(
        [1.0, 5.0, 15.0],
        "NAK delays in seconds per delivery count, comma-separated (last repeats)",
    )
    consumer_backoff: Bool = setting(
        False,
        "also put --backoff on the consumer (server-side); the server then uses it "
        "instead of ack_wait as the ack-timeout redelivery schedule",
    )
    ack_timeout: float = setting(2.0, "seconds to wait for the server to confirm an ACK/NAK/TERM")
    publish_timeout: float = setting(2.0, "seconds to wait for a PubAck (DLQ publishes)")
    fetch_batch: int = setting(100, "max messages per pull fetch")
    fetch_timeout: float = setting(1.0, "seconds a fetch waits for messages")
    max_inflight: int = setting(1000, "max messages being processed at once")
    tenant_allowlist: Csv = setting(
        [], "allowed tenant ids, comma-separated; empty disables the tenant check"
    )
    label_tenants: Csv = setting(
        [], "extra tenant ids kept verbatim in tenant_id labels (others become `other`)"
    )
    providers: Providers = setting(
        [("provider-a", 70), ("provider-b", 30)],
        "weighted providers name:weight,... for decisions",
    )
    max_payload_bytes: int = setting(1_048_576, "larger requests are invalid")
    bp_queue_threshold: int = setting(
        1000, "backpressure: consumer pending messages above this is overloaded"
    )
    bp_latency_threshold_ms: float = setting(
        5000.0, "backpressure: p95 processing latency (ms) above this is overloaded"
    )
    bp_inflight_threshold: int = setting(
        500, "backpressure: in-flight messages above this is overloaded"
    )
    bp_retry_after: float = setting(
        30.0,
        "seconds a request rejected by active backpressure is told to wait: the NAK delay "
        "(JetStream), Retry-After rounded up (HTTP 503)",
    )
    latency_window: float = setting(60.0, "seconds of samples behind the p50/p95/p99 gauges")
    monitor_interval: float = setting(
        1.0, "seconds between consumer-info, health-check and backpressure evaluations"
    )
    metrics_host: str = setting(
        "127.0.0.1", "bind address of the HTTP side: /metrics, /healthz, /readyz, /decide, /faults"
    )
    metrics_port: int = setting(
        9001, "port of the HTTP side: /metrics, /healthz, /readyz, POST /decide, /faults"
    )
    connect_timeout: float = setting(2.0, "seconds per connect attempt")
    ping_interval: float = setting(
        5.0, "seconds between client PINGs (loss detection on a blackholed link)"
    )
    max_outstanding_pings: int = setting(2, "unanswered PINGs before the connection counts as lost")
    reconnect_delay_ms: int = setting(1000, "reconnect backoff base: delay = base * 2^attempt")
    max_reconnect_delay_ms: int = setting(30000, "reconnect backoff cap")
    max_reconnect_attempts: int = setting(
        10,
        "failed attempts before 'reconnection exhausted' and fail-open (retries go on at the cap)",
    )
    fail_open: Bool = setting(
        False, "start in fail-open mode: publishes while disconnected are dropped, not queued"
    )
    max_pending_operations: int = setting(
        1000, "cap of the disconnected-publish queue (oldest dropped)"
    )
    subscribe_recreate_after: int = setting(
        3, "consecutive subscribe failures before stream and consumer are re-created"
    )
    fault_hook: Bool = setting(
        False, "serve POST/GET/DELETE /faults (off by default)", flag="--enable-fault-hook"
    )
    serve_readyz: Bool = setting(
        True, "serve GET /readyz (200 once connected to NATS); off, readiness rests on /metrics"
    )
    log_level: str = setting("info", "debug, info, warning or error")
    log_format: str = setting("kv", "kv (key=value) or json")

    @property
    def nats_servers(self) -> list[str]:
        """The server URLs `nats_url` names (one, or a cluster's comma-separated list)."""
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    @property
    def reply_subject(self) -> str:
        return f"{self.subject}.reply"

    @property
    def dlq_subject(self) -> str:
        return f"{self.subject}.dlq"

    @property
    def assignment_id(self) -> str:
        """Catalogue §5.5: subjects with >= 4 segments use their last segment."""
        parts = self.subject.split(".")
        return parts[-1] if len(parts) >= 4 else self.subject

    def nak_delay(self, delivery_count: int) -> float:
        """Backoff for the NAK of delivery `delivery_count` (1-based), last entry repeated."""
        if not self.backoff:
            return 0.0
        return self.backoff[min(max(delivery_count, 1), len(self.backoff)) - 1]

    def reconnect_delay(self, attempt: int) -> float:
        """Seconds before reconnect attempt `attempt` (0-based): base * 2^attempt, capped."""
        delay_ms = min(
            self.reconnect_delay_ms * (2 ** min(attempt, 30)), self.max_reconnect_delay_ms
        )
        return delay_ms / 1000.0


@dataclass(frozen=True)
class Option:
    """One setting as the command line and the environment see it."""

    field: str
    flag: str
    env: str
    is_bool: bool
    help: str
    default: Any


def options() -> list[Option]:
    """Every setting of `Config`, in declaration order."""
    return [_option(name, info) for name, info in Config.model_fields.items()]


def _option(name: str, info: FieldInfo) -> Option:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    flag = str(extra.get("flag") or "--" + name.replace("_", "-"))
    return Option(
        field=name,
        flag=flag,
        env=ENV_PREFIX + name.upper(),
        is_bool=info.annotation is bool,
        help=info.description or "",
        default=info.get_default(call_default_factory=True),
    )


def _display(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(
            f"{v[0]}:{v[1]}"
            if isinstance(v, tuple)
            else f"{v:g}"
            if isinstance(v, float)
            else str(v)
            for v in value
        )
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    """The `python -m router` parser; every flag documents its env var and default."""
    parser = argparse.ArgumentParser(
        prog="python -m router",
        description="Reference decide router: consumes decide requests from JetStream (reply, "
        "confirmed ACK/NAK, dead-letter at max_deliver) and answers them synchronously on "
        "POST /decide of the metrics port, publishes a usage event per decision (queued while "
        "NATS is unreachable), exports Prometheus metrics.",
    )
    for opt in options():
        text = f"{opt.help} (env {opt.env}; default {_display(opt.default)})"
        if opt.is_bool:
            # `--flag` alone means true; `--flag=false` / `--flag false` switch it off.
            parser.add_argument(
                opt.flag,
                dest=opt.field,
                nargs="?",
                const="true",
                default=None,
                metavar="BOOL",
                help=text,
            )
        else:
            parser.add_argument(opt.flag, dest=opt.field, default=None, help=text)
    return parser


def load_config(argv: Sequence[str] | None = None) -> Config:
    """Flags win over ROUTER_* env vars, which win over the defaults."""
    args = build_parser().parse_args(argv)
    given = {name: raw for name, raw in vars(args).items() if raw is not None}
    try:
        config = Config(**given)
    except ValidationError as exc:
        where = {opt.field: f"{opt.flag} (env {opt.env})" for opt in options()}
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            msg = error["msg"].removeprefix("Value error, ")
            problems.append(f"invalid value for {where.get(name, name)}: {msg}")
        raise SystemExit("; ".join(problems)) from exc
    validate(config)
    return config


def validate(config: Config) -> None:
    """Reject settings that would make the router misbehave silently."""
    problems = []
    if config.max_deliver < 1:
        problems.append("--max-deliver must be >= 1")
    if config.max_inflight < 1 or config.fetch_batch < 1:
        problems.append("--max-inflight and --fetch-batch must be >= 1")
    if config.max_reconnect_attempts < 1:
        problems.append("--max-reconnect-attempts must be >= 1")
    if not config.nats_servers:
        problems.append("--nats-url must name at least one server")
    if not 1 <= config.stream_replicas <= 5:
        problems.append("--stream-replicas must be 1..5")
    if config.stream_storage not in ("file", "memory"):
        problems.append("--stream-storage must be file or memory")
    if config.log_format not in ("kv", "json"):
        problems.append("--log-format must be kv or json")
    if config.max_pending_operations < 1:
        problems.append("--max-pending-operations must be >= 1")
    if not _publishable(config.usage_subject):
        problems.append("--usage-subject must be a subject without wildcards or spaces")
    if problems:
        raise SystemExit("; ".join(problems))


def _publishable(subject: str) -> bool:
    """A subject one can publish to: non-empty tokens, no wildcards, no whitespace."""
    tokens = subject.split(".")
    return all(t and t not in ("*", ">") and not any(ch.isspace() for ch in t) for t in tokens)
