"""Router settings: one declaration gives flags, ROUTER_* env vars, defaults, parsing and --help."""

from __future__ import annotations

import os

import pytest

from router.config import ENV_PREFIX, Config, build_parser, load_config, options

# The command line as it was before settings were derived from `Config`: none may disappear.
LEGACY_FLAGS = {
    "--nats-url": "nats_url",
    "--nats-cluster": "nats_cluster",
    "--subject": "subject",
    "--stream": "stream",
    "--dlq-stream": "dlq_stream",
    "--consumer": "consumer",
    "--stream-storage": "stream_storage",
    "--ack-wait": "ack_wait",
    "--max-deliver": "max_deliver",
    "--backoff": "backoff",
    "--consumer-backoff": "consumer_backoff",
    "--ack-timeout": "ack_timeout",
    "--publish-timeout": "publish_timeout",
    "--fetch-batch": "fetch_batch",
    "--fetch-timeout": "fetch_timeout",
    "--max-inflight": "max_inflight",
    "--tenant-allowlist": "tenant_allowlist",
    "--label-tenants": "label_tenants",
    "--providers": "providers",
    "--max-payload-bytes": "max_payload_bytes",
    "--bp-queue-threshold": "bp_queue_threshold",
    "--bp-latency-threshold-ms": "bp_latency_threshold_ms",
    "--bp-inflight-threshold": "bp_inflight_threshold",
    "--bp-retry-after": "bp_retry_after",
    "--latency-window": "latency_window",
    "--monitor-interval": "monitor_interval",
    "--metrics-host": "metrics_host",
    "--metrics-port": "metrics_port",
    "--connect-timeout": "connect_timeout",
    "--ping-interval": "ping_interval",
    "--max-outstanding-pings": "max_outstanding_pings",
    "--reconnect-delay-ms": "reconnect_delay_ms",
    "--max-reconnect-delay-ms": "max_reconnect_delay_ms",
    "--max-reconnect-attempts": "max_reconnect_attempts",
    "--fail-open": "fail_open",
    "--max-pending-operations": "max_pending_operations",
    "--subscribe-recreate-after": "subscribe_recreate_after",
    "--enable-fault-hook": "fault_hook",
    "--serve-readyz": "serve_readyz",
    "--log-level": "log_level",
    "--log-format": "log_format",
}
# Added since: the synchronous intake's usage events (POST /decide needs no setting of its own),
# and the replicas of created streams (3 on a cluster slot).
ADDED_FLAGS = {
    "--usage-events": "usage_events",
    "--usage-subject": "usage_subject",
    "--stream-replicas": "stream_replicas",
}
BOOL_FIELDS = {"consumer_backoff", "fail_open", "fault_hook", "serve_readyz", "usage_events"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ROUTER_* variable of the calling shell leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def test_every_legacy_flag_and_env_var_is_derived_from_the_declaration() -> None:
    derived = {opt.flag: opt.field for opt in options()}
    assert LEGACY_FLAGS.items() <= derived.items()
    assert derived == {**LEGACY_FLAGS, **ADDED_FLAGS}
    fields = [*LEGACY_FLAGS.values(), *ADDED_FLAGS.values()]
    assert {opt.env for opt in options()} == {ENV_PREFIX + f.upper() for f in fields}
    assert {opt.field for opt in options() if opt.is_bool} == BOOL_FIELDS


def test_defaults() -> None:
    c = load_config([])
    assert c == Config()
    assert (c.nats_url, c.max_deliver, c.backoff, c.ack_wait) == (
        "nats://127.0.0.1:4222",
        5,
        [1.0, 5.0, 15.0],
        30.0,
    )
    assert c.providers == [("provider-a", 70), ("provider-b", 30)]
    assert (c.max_reconnect_attempts, c.max_pending_operations) == (10, 1000)
    assert (c.bp_queue_threshold, c.bp_latency_threshold_ms, c.bp_inflight_threshold) == (
        1000,
        5000.0,
        500,
    )
    assert (c.fault_hook, c.serve_readyz, c.fail_open, c.consumer_backoff) == (
        False,
        True,
        False,
        False,
    )
    assert c.tenant_allowlist == [] and c.label_tenants == []
    assert (c.usage_events, c.usage_subject) == (True, "beamline.usage.v1.metered")


def test_flags_win_over_env_which_wins_over_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_MAX_DELIVER", "4")
    monkeypatch.setenv("ROUTER_ACK_WAIT", "1.5")
    monkeypatch.setenv("ROUTER_FAIL_OPEN", "true")
    c = load_config(["--max-deliver", "7", "--fail-open=false"])
    assert (c.max_deliver, c.ack_wait, c.fail_open) == (7, 1.5, False)
    assert c.fetch_batch == 100


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--enable-fault-hook"], True),
        (["--enable-fault-hook=true"], True),
        (["--enable-fault-hook=false"], False),
        (["--enable-fault-hook", "false"], False),
        (["--enable-fault-hook", "yes"], True),
        ([], False),
    ],
)
def test_boolean_flags(argv: list[str], expected: bool) -> None:
    assert load_config(argv).fault_hook is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("1", True), ("yes", True), ("false", False), ("0", False), ("no", False)],
)
def test_boolean_env_vars(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("ROUTER_SERVE_READYZ", raw)
    monkeypatch.setenv("ROUTER_FAULT_HOOK", raw)
    c = load_config([])
    assert c.serve_readyz is expected and c.fault_hook is expected


def test_list_settings_parse_from_flags_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_TENANT_ALLOWLIST", "a, b,,c")
    monkeypatch.setenv("ROUTER_PROVIDERS", "x:3,y")
    c = load_config(["--backoff", "1,2.5", "--label-tenants", ""])
    assert c.tenant_allowlist == ["a", "b", "c"]
    assert c.providers == [("x", 3), ("y", 1)]
    assert c.backoff == [1.0, 2.5]
    assert c.label_tenants == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-deliver", "x"], "invalid value for --max-deliver (env ROUTER_MAX_DELIVER)"),
        (["--fail-open=maybe"], "not a boolean: 'maybe'"),
        (["--providers", "a:0"], "providers need positive total weight"),
        (["--max-deliver", "0"], "--max-deliver must be >= 1"),
        (["--max-reconnect-attempts", "0"], "--max-reconnect-attempts must be >= 1"),
        (["--max-pending-operations", "0"], "--max-pending-operations must be >= 1"),
        (["--fetch-batch", "0"], "--max-inflight and --fetch-batch must be >= 1"),
        (["--stream-storage", "disk"], "--stream-storage must be file or memory"),
        (["--log-format", "xml"], "--log-format must be kv or json"),
        (["--usage-subject", "usage.*"], "--usage-subject must be a subject without wildcards"),
        (["--usage-subject", "a..b"], "--usage-subject must be a subject without wildcards"),
        (["--usage-subject", ""], "--usage-subject must be a subject without wildcards"),
    ],
)
def test_invalid_settings_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(argv)


def test_invalid_env_var_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_MAX_DELIVER", "abc")
    with pytest.raises(SystemExit, match="--max-deliver"):
        load_config([])


def test_settings_are_frozen() -> None:
    with pytest.raises(ValueError):
        Config().max_deliver = 3  # type: ignore[misc]


def test_help_line_per_flag_names_env_var_and_default() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "--backoff BACKOFF NAK delays" in text
    assert "(env ROUTER_BACKOFF; default 1,5,15)" in text
    assert "(env ROUTER_PROVIDERS; default provider-a:70,provider-b:30)" in text
    assert "(env ROUTER_FAULT_HOOK; default False)" in text
    assert "(env ROUTER_SERVE_READYZ; default True)" in text
    assert "(env ROUTER_TENANT_ALLOWLIST; default )" in text
    assert "(env ROUTER_USAGE_EVENTS; default True)" in text
    assert "(env ROUTER_USAGE_SUBJECT; default beamline.usage.v1.metered)" in text
    assert "POST /decide" in text


def test_a_cluster_url_list_and_replicas() -> None:
    one = load_config([])
    assert one.nats_servers == ["nats://127.0.0.1:4222"] and one.stream_replicas == 1
    c = load_config(["--nats-url", "nats://a:1, nats://b:2,nats://c:3", "--stream-replicas", "3"])
    assert c.nats_servers == ["nats://a:1", "nats://b:2", "nats://c:3"]
    assert c.stream_replicas == 3
    with pytest.raises(SystemExit, match="--stream-replicas must be 1..5"):
        load_config(["--stream-replicas", "0"])
    with pytest.raises(SystemExit, match="--nats-url must name at least one server"):
        load_config(["--nats-url", " , "])
