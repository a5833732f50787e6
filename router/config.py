"""Router settings from command-line flags, each with a ROUTER_* environment variable fallback."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "ROUTER_"


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _floats(text: str) -> list[float]:
    return [float(part) for part in _csv(text)]


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _providers(text: str) -> list[tuple[str, int]]:
    result: list[tuple[str, int]] = []
    for part in _csv(text):
        name, _, weight = part.partition(":")
        result.append((name.strip(), int(weight) if weight else 1))
    if not result or any(w < 0 for _, w in result) or sum(w for _, w in result) == 0:
        raise ValueError(f"providers need positive total weight: {text!r}")
    return result


@dataclass(frozen=True)
class Config:
    """Everything the router needs; defaults follow the catalogue's documented intent (§6.3)."""

    nats_url: str = "nats://127.0.0.1:4222"
    nats_cluster: str = "default"
    subject: str = "beamline.router.v1.decide"
    stream: str = "router-stream"
    dlq_stream: str = "router-dlq"
    consumer: str = "router-decide-consumer"
    stream_storage: str = "file"
    ack_wait: float = 30.0
    max_deliver: int = 5
    backoff: list[float] = field(default_factory=lambda: [1.0, 5.0, 15.0])
    consumer_backoff: bool = False
    ack_timeout: float = 2.0
    publish_timeout: float = 2.0
    fetch_batch: int = 100
    fetch_timeout: float = 1.0
    max_inflight: int = 1000
    tenant_allowlist: list[str] = field(default_factory=list)
    label_tenants: list[str] = field(default_factory=list)
    providers: list[tuple[str, int]] = field(
        default_factory=lambda: [("provider-a", 70), ("provider-b", 30)]
    )
    max_payload_bytes: int = 1_048_576
    bp_queue_threshold: int = 1000
    bp_latency_threshold_ms: float = 5000.0
    bp_inflight_threshold: int = 500
    bp_retry_after: float = 30.0
    latency_window: float = 60.0
    monitor_interval: float = 1.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9001
    connect_timeout: float = 2.0
    ping_interval: float = 5.0
    max_outstanding_pings: int = 2
    reconnect_delay_ms: int = 1000
    max_reconnect_delay_ms: int = 30000
    max_reconnect_attempts: int = 10
    fail_open: bool = False
    max_pending_operations: int = 1000
    subscribe_recreate_after: int = 3
    fault_hook: bool = False
    serve_readyz: bool = True
    log_level: str = "info"
    log_format: str = "kv"

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


# (flag, field, parser, help). The env var is ROUTER_<FIELD upper-cased>.
_OPTIONS: list[tuple[str, str, Callable[[str], Any], str]] = [
    (
        "--nats-url",
        "nats_url",
        str,
        "NATS server URL (through the Toxiproxy proxy in the local stack)",
    ),
    ("--nats-cluster", "nats_cluster", str, "value of the `cluster` label on connect failures"),
    (
        "--subject",
        "subject",
        str,
        "decide subject; replies default to <subject>.reply, DLQ is <subject>.dlq",
    ),
    ("--stream", "stream", str, "stream holding the decide subject (created if missing)"),
    ("--dlq-stream", "dlq_stream", str, "stream holding <subject>.dlq (created if missing)"),
    ("--consumer", "consumer", str, "durable pull consumer name"),
    ("--stream-storage", "stream_storage", str, "storage of created streams: file or memory"),
    (
        "--ack-wait",
        "ack_wait",
        float,
        "consumer ack_wait in seconds (short for time-compressed runs)",
    ),
    (
        "--max-deliver",
        "max_deliver",
        int,
        "consumer max_deliver; at this delivery a failing message goes to the DLQ",
    ),
    (
        "--backoff",
        "backoff",
        _floats,
        "NAK delays in seconds per delivery count, comma-separated (last repeats)",
    ),
    (
        "--consumer-backoff",
        "consumer_backoff",
        _bool,
        "also put --backoff on the consumer (server-side); the server then uses it "
        "instead of ack_wait as the ack-timeout redelivery schedule",
    ),
    (
        "--ack-timeout",
        "ack_timeout",
        float,
        "seconds to wait for the server to confirm an ACK/NAK/TERM",
    ),
    ("--publish-timeout", "publish_timeout", float, "seconds to wait for a PubAck (DLQ publishes)"),
    ("--fetch-batch", "fetch_batch", int, "max messages per pull fetch"),
    ("--fetch-timeout", "fetch_timeout", float, "seconds a fetch waits for messages"),
    ("--max-inflight", "max_inflight", int, "max messages being processed at once"),
    (
        "--tenant-allowlist",
        "tenant_allowlist",
        _csv,
        "allowed tenant ids, comma-separated; empty disables the tenant check",
    ),
    (
        "--label-tenants",
        "label_tenants",
        _csv,
        "extra tenant ids kept verbatim in tenant_id labels (others become `other`)",
    ),
    ("--providers", "providers", _providers, "weighted providers name:weight,... for decisions"),
    ("--max-payload-bytes", "max_payload_bytes", int, "larger requests are invalid"),
    (
        "--bp-queue-threshold",
        "bp_queue_threshold",
        int,
        "backpressure: consumer pending messages above this is overloaded",
    ),
    (
        "--bp-latency-threshold-ms",
        "bp_latency_threshold_ms",
        float,
        "backpressure: p95 processing latency (ms) above this is overloaded",
    ),
    (
        "--bp-inflight-threshold",
        "bp_inflight_threshold",
        int,
        "backpressure: in-flight messages above this is overloaded",
    ),
    (
        "--bp-retry-after",
        "bp_retry_after",
        float,
        "NAK delay in seconds for messages rejected by active backpressure",
    ),
    (
        "--latency-window",
        "latency_window",
        float,
        "seconds of samples behind the p50/p95/p99 gauges",
    ),
    (
        "--monitor-interval",
        "monitor_interval",
        float,
        "seconds between consumer-info, health-check and backpressure evaluations",
    ),
    ("--metrics-host", "metrics_host", str, "bind address of /metrics, /healthz and /faults"),
    ("--metrics-port", "metrics_port", int, "port of /metrics, /healthz and /faults"),
    ("--connect-timeout", "connect_timeout", float, "seconds per connect attempt"),
    (
        "--ping-interval",
        "ping_interval",
        float,
        "seconds between client PINGs (loss detection on a blackholed link)",
    ),
    (
        "--max-outstanding-pings",
        "max_outstanding_pings",
        int,
        "unanswered PINGs before the connection counts as lost",
    ),
    (
        "--reconnect-delay-ms",
        "reconnect_delay_ms",
        int,
        "reconnect backoff base: delay = base * 2^attempt",
    ),
    ("--max-reconnect-delay-ms", "max_reconnect_delay_ms", int, "reconnect backoff cap"),
    (
        "--max-reconnect-attempts",
        "max_reconnect_attempts",
        int,
        "failed attempts before 'reconnection exhausted' and fail-open (retries go on at the cap)",
    ),
    (
        "--fail-open",
        "fail_open",
        _bool,
        "start in fail-open mode: publishes while disconnected are dropped, not queued",
    ),
    (
        "--max-pending-operations",
        "max_pending_operations",
        int,
        "cap of the disconnected-publish queue (oldest dropped)",
    ),
    (
        "--subscribe-recreate-after",
        "subscribe_recreate_after",
        int,
        "consecutive subscribe failures before stream and consumer are re-created",
    ),
    ("--enable-fault-hook", "fault_hook", _bool, "serve POST/GET/DELETE /faults (off by default)"),
    (
        "--serve-readyz",
        "serve_readyz",
        _bool,
        "serve GET /readyz (200 once connected to NATS); off, readiness rests on /metrics",
    ),
    ("--log-level", "log_level", str, "debug, info, warning or error"),
    ("--log-format", "log_format", str, "kv (key=value) or json"),
]

_BOOL_FIELDS = {"consumer_backoff", "fail_open", "fault_hook", "serve_readyz"}


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
        description="Reference JetStream decide router: consumes decide requests, replies, "
        "ACKs/NAKs with confirmation, dead-letters exhausted messages, exports Prometheus metrics.",
    )
    defaults = Config()
    for flag, name, _, text in _OPTIONS:
        env = ENV_PREFIX + name.upper()
        default = _display(getattr(defaults, name))
        if name in _BOOL_FIELDS:
            parser.add_argument(
                flag,
                dest=name,
                nargs="?",
                const="true",
                default=None,
                metavar="BOOL",
                help=f"{text} (env {env}; default {default})",
            )
        else:
            parser.add_argument(
                flag, dest=name, default=None, help=f"{text} (env {env}; default {default})"
            )
    return parser


def load_config(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> Config:
    """Flags win over ROUTER_* env vars, which win over the defaults."""
    env = dict(os.environ) if env is None else env
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    for flag, name, parse, _ in _OPTIONS:
        raw = getattr(args, name)
        if raw is None:
            raw = env.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        parser = _bool if name in _BOOL_FIELDS else parse
        try:
            values[name] = parser(raw)
        except ValueError as exc:
            raise SystemExit(f"invalid value for {flag}: {exc}") from exc
    config = Config(**values)
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
    if config.stream_storage not in ("file", "memory"):
        problems.append("--stream-storage must be file or memory")
    if config.log_format not in ("kv", "json"):
        problems.append("--log-format must be kv or json")
    if config.max_pending_operations < 1:
        problems.append("--max-pending-operations must be >= 1")
    if problems:
        raise SystemExit("; ".join(problems))
