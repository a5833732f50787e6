"""Pure conversion of NATS monitoring answers (/varz, /routez, /healthz, /jsz) into Prometheus
metric families, with the names, labels and types of the official prometheus-nats-exporter
(nats-io/prometheus-nats-exporter, collector/collector.go, healthz.go, jsz.go), plus the
`harness_nats_*` families a cluster's alerts need and the official exporter lacks.

No I/O here: `families(snapshots)` turns what the poller stored into families.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

CORE = "gnatsd"
"""The official exporter's namespace for server endpoints (kept from gnatsd days)."""
JETSTREAM = "jetstream"
OWN = "harness_nats"
"""Our prefix for what the official exporter has no family for."""

JSZ_QUERY = "consumers=true&config=true&raft=true"
"""What the official exporter's `-jsz=all` asks /jsz for."""

# The generic collector (official collector.go, objectToMetrics): every number of the JSON
# answer, nested objects flattened with `_`, is a gauge `gnatsd_<endpoint>_<path>` labelled
# server_id; of the strings only these keys become gauges: an RFC 3339 time as epoch
# milliseconds, any other as a constant 1 with the string in label `value`. Arrays and booleans
# are skipped, and so are these flattened names.
GENERIC_LABEL_KEYS = frozenset(
    ("server_id", "server_name", "version", "domain", "leader", "name", "start", "config_load_time")
)
GENERIC_SKIP = frozenset(
    (
        "leaf",
        "trusted_operators_claim",
        "cluster_tls_timeout",
        "cluster_cluster_port",
        "cluster_auth_timeout",
        "gateway_port",
        "gateway_auth_timeout",
        "gateway_tls_timeout",
        "gateway_connect_retries",
    )
)
GENERIC_ENDPOINTS = ("varz", "routez")
"""The endpoints the generic collector serves (the official exporter's `-varz`, `-routez`)."""
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

SERVER_LABELS = ("server_id", "server_name", "cluster", "domain", "meta_leader", "is_meta_leader")
ACCOUNT_LABELS = (*SERVER_LABELS, "account", "account_name", "account_id")
STREAM_LABELS = (
    *ACCOUNT_LABELS,
    "stream_name",
    "stream_leader",
    "is_stream_leader",
    "stream_raft_group",
)
CONSUMER_LABELS = (
    *STREAM_LABELS,
    "consumer_name",
    "consumer_leader",
    "is_consumer_leader",
    "consumer_desc",
)
SOURCE_LABELS = (*STREAM_LABELS, "source_name", "source_api", "source_deliver")
MIRROR_LABELS = (*STREAM_LABELS, "mirror_name", "mirror_api", "mirror_deliver")


@dataclass
class Snapshot:
    """The latest answers of one server; an endpoint that did not answer is None."""

    server_id: str
    """The `server_id` label value: the server's name (as the official exporter's
    `-use_internal_server_name` gives it)."""
    varz: dict[str, Any] | None = None
    routez: dict[str, Any] | None = None
    jsz: dict[str, Any] | None = None
    healthz: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    """endpoint → why its last poll failed."""


class Families:
    """Gauge families collected across servers, each with one fixed label set."""

    def __init__(self) -> None:
        self._families: dict[str, GaugeMetricFamily] = {}
        self._labels: dict[str, tuple[str, ...]] = {}

    def add(self, name: str, help_text: str, labels: dict[str, str], value: float) -> None:
        names = tuple(labels)
        family = self._families.get(name)
        if family is None:
            family = GaugeMetricFamily(name, help_text, labels=list(names))
            self._families[name] = family
            self._labels[name] = names
        elif self._labels[name] != names:
            return  # the same name with another label set cannot be served; first one wins
        family.add_metric([labels[n] for n in names], float(value))

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


def _fq_name(path: list[str]) -> str:
    name = "_".join(path).replace("/", "_").strip("_")
    while "__" in name:
        name = name.replace("__", "_")
    return name


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _epoch_ms(text: str) -> float | None:
    """An RFC 3339 time (what Go's time.Parse(RFC3339Nano) takes) as epoch milliseconds."""
    if not _RFC3339.match(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000.0
    except ValueError:
        return None


def generic(out: Families, endpoint: str, server_id: str, body: dict[str, Any]) -> None:
    """The official generic collector's families for one endpoint answer (varz, routez)."""

    def walk(node: dict[str, Any], prefix: list[str]) -> None:
        for key, value in node.items():
            path = [*prefix, key]
            fqn = _fq_name(path)
            if fqn in GENERIC_SKIP:
                continue
            name = f"{CORE}_{endpoint}_{fqn}"
            if isinstance(value, dict):
                walk(value, path)
            elif not _NAME.match(name) or isinstance(value, bool):
                continue
            elif isinstance(value, int | float):
                out.add(name, fqn, {"server_id": server_id}, value)
            elif isinstance(value, str) and key in GENERIC_LABEL_KEYS:
                when = _epoch_ms(value)
                if when is not None:
                    out.add(name, fqn, {"server_id": server_id}, when)
                else:
                    out.add(name, fqn, {"server_id": server_id, "value": value}, 1)

    walk(body, [])


def healthz(out: Families, snapshot: Snapshot) -> None:
    """gnatsd_healthz_status (0 ok, 1 not; absent when unreachable) and
    gnatsd_healthz_status_value (1 ok, else 0, the status or `unreachable` in `value`)."""
    sid = snapshot.server_id
    body = snapshot.healthz
    status = str(body.get("status", "")) if body is not None else None
    if status is not None:
        out.add(f"{CORE}_healthz_status", "status", {"server_id": sid}, 0 if status == "ok" else 1)
    out.add(
        f"{CORE}_healthz_status_value",
        "status",
        {"server_id": sid, "value": status if status is not None else "unreachable"},
        1 if status == "ok" else 0,
    )


def _seconds_between(later: str | None, earlier: str | None) -> float | None:
    a, b = _epoch_ms(later or ""), _epoch_ms(earlier or "")
    return None if a is None or b is None else (a - b) / 1000.0


Gauge = tuple[str, str, tuple[str, ...]]
"""One official jsz family: its name after `jetstream_`, its help, and the path of keys to its
value in the JSON object it is read from (absent or null: 0, as the official exporter's zero
values)."""

SERVER_GAUGES: tuple[Gauge, ...] = (
    ("server_jetstream_disabled", "JetStream disabled or not", ("disabled",)),
    ("server_max_memory", "JetStream Max Memory", ("config", "max_memory")),
    ("server_max_storage", "JetStream Max Storage", ("config", "max_storage")),
    ("server_total_streams", "Total number of streams in JetStream", ("streams",)),
    ("server_total_consumers", "Total number of consumers in JetStream", ("consumers",)),
    ("server_total_messages", "Total number of stored messages in JetStream", ("messages",)),
    ("server_total_message_bytes", "Total number of bytes stored in JetStream", ("bytes",)),
)
"""Of /jsz itself."""
ACCOUNT_GAUGES: tuple[Gauge, ...] = (
    ("account_max_storage", "JetStream Account Max Storage in bytes", ("reserved_storage",)),
    ("account_max_memory", "JetStream Account Max Memory in bytes", ("reserved_memory",)),
    ("account_storage_used", "Total number of bytes used by JetStream storage", ("storage",)),
    ("account_memory_used", "Total number of bytes used by JetStream memory", ("memory",)),
)
"""Of each of /jsz's `account_details`."""
STREAM_GAUGES: tuple[Gauge, ...] = (
    ("stream_total_messages", "Total number of messages from a stream", ("state", "messages")),
    ("stream_total_bytes", "Total stored bytes from a stream", ("state", "bytes")),
    ("stream_first_seq", "First sequence from a stream", ("state", "first_seq")),
    ("stream_last_seq", "Last sequence from a stream", ("state", "last_seq")),
    (
        "stream_consumer_count",
        "Total number of consumers from a stream",
        ("state", "consumer_count"),
    ),
    ("stream_subject_count", "Total number of subjects in a stream", ("state", "num_subjects")),
)
"""Of each of an account's `stream_detail`."""
STREAM_LIMIT_GAUGES: tuple[Gauge, ...] = (
    (
        "stream_limit_bytes",
        "The maximum configured storage limit (in bytes) for a "
        "JetStream stream. A value of -1 indicates no limit.",
        ("config", "max_bytes"),
    ),
    (
        "stream_limit_messages",
        "The maximum number of messages allowed in a JetStream "
        "stream as per its configuration. A value of -1 indicates no limit.",
        ("config", "max_msgs"),
    ),
)
"""Of a stream that reports its `config` (absent without one)."""
CONSUMER_GAUGES: tuple[Gauge, ...] = (
    (
        "consumer_delivered_consumer_seq",
        "Latest sequence number of a stream consumer",
        ("delivered", "consumer_seq"),
    ),
    (
        "consumer_delivered_stream_seq",
        "Latest sequence number of a stream",
        ("delivered", "stream_seq"),
    ),
    ("consumer_num_ack_pending", "Number of pending acks from a consumer", ("num_ack_pending",)),
    (
        "consumer_num_redelivered",
        "Number of redelivered messages from a consumer",
        ("num_redelivered",),
    ),
    (
        "consumer_num_waiting",
        "Number of inflight fetch requests from a pull consumer",
        ("num_waiting",),
    ),
    ("consumer_num_pending", "Number of pending messages from a consumer", ("num_pending",)),
    (
        "consumer_ack_floor_stream_seq",
        "Number of ack floor stream seq from a consumer",
        ("ack_floor", "stream_seq"),
    ),
    (
        "consumer_ack_floor_consumer_seq",
        "Number of ack floor consumer seq from a consumer",
        ("ack_floor", "consumer_seq"),
    ),
)
"""Of each of a stream's `consumer_detail`."""
CONSUMER_SINCE: tuple[tuple[str, str, str], ...] = (
    (
        "consumer_last_delivery_seconds",
        "Seconds since last message delivery to consumer",
        "delivered",
    ),
    ("consumer_last_ack_seconds", "Seconds since last ack from consumer", "ack_floor"),
)
"""Of a consumer: seconds from its `last_active` under that key to the answer's `ts` (absent
when either time is missing)."""


def _dig(body: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        body = (body or {}).get(key)
    return body


def _gauges(out: Families, table: tuple[Gauge, ...], labels: dict[str, str], body: Any) -> None:
    """One sample of each family of `table`, read from `body`."""
    for family, help_text, path in table:
        value = _dig(body, path)
        out.add(f"{JETSTREAM}_{family}", help_text, labels, float(value or 0))


def _leader_labels(kind: str, body: dict[str, Any], server_name: str) -> dict[str, str]:
    """`<kind>_leader` and `is_<kind>_leader` of a stream or consumer (a leader when it is not
    clustered)."""
    cluster = body.get("cluster")
    leader = str(cluster.get("leader", "")) if cluster else ""
    is_leader = "true" if cluster is None or leader == server_name else "false"
    return {f"{kind}_leader": leader, f"is_{kind}_leader": is_leader}


def jetstream(out: Families, snapshot: Snapshot) -> None:
    """The official jsz collector's families (`-jsz=all`), from /jsz and /varz of one server."""
    jsz, varz = snapshot.jsz, snapshot.varz
    if jsz is None or varz is None:
        return  # the official collector skips a server when either request fails
    server_name = str(varz.get("server_name", ""))
    meta = jsz.get("meta_cluster")
    meta_leader = str(meta.get("leader", "")) if meta else ""
    server = {
        "server_id": snapshot.server_id,
        "server_name": server_name,
        "cluster": str(meta.get("name", "")) if meta else "",
        "domain": str((jsz.get("config") or {}).get("domain", "")),
        "meta_leader": meta_leader,
        "is_meta_leader": "true" if meta is None or meta_leader == server_name else "false",
    }
    _gauges(out, SERVER_GAUGES, server, jsz)
    for account in jsz.get("account_details") or []:
        name = str(account.get("name", ""))
        acc = {
            **server,
            "account": name,
            "account_name": name,
            "account_id": str(account.get("id", "")),
        }
        _gauges(out, ACCOUNT_GAUGES, acc, account)
        for stream in account.get("stream_detail") or []:
            _stream(out, acc, server_name, stream)


def _stream(out: Families, acc: dict[str, str], server_name: str, stream: dict[str, Any]) -> None:
    labels = {
        **acc,
        "stream_name": str(stream.get("name", "")),
        **_leader_labels("stream", stream, server_name),
        "stream_raft_group": str(stream.get("stream_raft_group", "")),
    }
    _gauges(out, STREAM_GAUGES, labels, stream)
    if stream.get("config") is not None:
        _gauges(out, STREAM_LIMIT_GAUGES, labels, stream)
    mirror = stream.get("mirror")
    links = [("source", s) for s in stream.get("sources") or []]
    links += [("mirror", mirror)] if mirror else []
    for kind, link in links:
        external = link.get("external") or {}
        link_labels = {
            **labels,
            f"{kind}_name": str(link.get("name", "")),
            f"{kind}_api": str(external.get("api", "")),
            f"{kind}_deliver": str(external.get("deliver", "")),
        }
        table = (
            (f"stream_{kind}_lag", f"Number of messages a stream {kind} is behind", ("lag",)),
            (
                f"stream_{kind}_active_duration_ns",
                f"Stream {kind} active duration in nanoseconds (-1 indicates inactive)",
                ("active",),
            ),
        )
        _gauges(out, table, link_labels, link)
    for consumer in stream.get("consumer_detail") or []:
        _consumer(out, labels, server_name, consumer)


def _consumer(out: Families, stream: dict[str, str], server_name: str, c: dict[str, Any]) -> None:
    labels = {
        **stream,
        "consumer_name": str(c.get("name", "")),
        **_leader_labels("consumer", c, server_name),
        "consumer_desc": str((c.get("config") or {}).get("description", "")),
    }
    for family, help_text, key in CONSUMER_SINCE:
        since = _seconds_between(c.get("ts"), (c.get(key) or {}).get("last_active"))
        if since is not None:
            out.add(f"{JETSTREAM}_{family}", help_text, labels, since)
    _gauges(out, CONSUMER_GAUGES, labels, c)


# --- our own families (harness_nats_*): what cluster alerts need and the official lacks ---

OWN_HELP = {
    "exporter_poll_ok": "1 when the last poll of this monitoring endpoint answered, else 0",
    "route_peers": "distinct servers this server has a route to (pooled connections count once)",
    "meta_leader_known": "1 when this server knows a JetStream meta leader, else 0",
    "meta_cluster_size": "the JetStream meta group's size as this server knows it",
    "stream_leader_known": "1 when this server knows a leader for the stream, else 0",
    "stream_replicas": "replicas the stream is configured with",
    "consumer_leader_known": "1 when this server knows a leader for the consumer, else 0",
}
REPLICA_HELP = {
    "current": "1 when the replica is seen and caught up (as the reporting leader says), else 0",
    "offline": "1 when the replica has not been seen recently, else 0",
    "lag": "operations the replica is behind the leader",
    "active_seconds": "seconds since the leader last heard from the replica",
}
ENDPOINTS = ("varz", "routez", "jsz", "healthz")


def _own(out: Families, name: str, labels: dict[str, str], value: float) -> None:
    out.add(f"{OWN}_{name}", OWN_HELP[name], labels, value)


def _replicas(
    out: Families, group: str, labels: dict[str, str], cluster: dict[str, Any], me: str
) -> None:
    """Per replica of a raft group (meta, stream, consumer): current, offline, lag, active,
    as the group's leader sees them (it lists the others). A follower lists replicas too, but
    its view is stale (`current` false, `active` 0 for peers it does not track): skipped."""
    if not me or cluster.get("leader") != me:
        return
    for peer in cluster.get("replicas") or []:
        replica = {**labels, "replica": str(peer.get("name", ""))}
        values = {
            "current": bool(peer.get("current")),
            "offline": bool(peer.get("offline")),
            "lag": peer.get("lag") or 0,
            "active_seconds": (peer.get("active") or 0) / 1e9,
        }
        for key, value in values.items():
            out.add(f"{OWN}_{group}_replica_{key}", REPLICA_HELP[key], replica, float(value))


def own(out: Families, snapshot: Snapshot) -> None:
    """harness_nats_* families of one server."""
    sid = {"server_id": snapshot.server_id}
    me = str((snapshot.varz or snapshot.routez or {}).get("server_name") or snapshot.server_id)
    for endpoint in ENDPOINTS:
        answered = getattr(snapshot, endpoint) is not None
        _own(out, "exporter_poll_ok", {**sid, "endpoint": endpoint}, answered)
    if snapshot.routez is not None:
        routes = snapshot.routez.get("routes") or []
        peers = {str(r.get("remote_name") or r.get("remote_id")) for r in routes}
        _own(out, "route_peers", sid, len(peers))
    jsz = snapshot.jsz
    if jsz is None:
        return
    meta = jsz.get("meta_cluster")
    if meta is not None:
        _own(out, "meta_leader_known", sid, bool(meta.get("leader")))
        _own(out, "meta_cluster_size", sid, meta.get("cluster_size") or 0)
        _replicas(out, "meta", sid, meta, me)
    for account in jsz.get("account_details") or []:
        acc = {**sid, "account": str(account.get("name", ""))}
        for stream in account.get("stream_detail") or []:
            labels = {**acc, "stream_name": str(stream.get("name", ""))}
            cluster = stream.get("cluster") or {}
            _own(out, "stream_leader_known", labels, bool(cluster.get("leader")))
            config = stream.get("config")
            if config is not None:
                _own(out, "stream_replicas", labels, config.get("num_replicas") or 1)
            _replicas(out, "stream", labels, cluster, me)
            for consumer in stream.get("consumer_detail") or []:
                c_labels = {**labels, "consumer_name": str(consumer.get("name", ""))}
                c_cluster = consumer.get("cluster") or {}
                _own(out, "consumer_leader_known", c_labels, bool(c_cluster.get("leader")))
                _replicas(out, "consumer", c_labels, c_cluster, me)


def families(snapshots: Iterable[Snapshot]) -> list[Metric]:
    """Every family served, from the latest snapshot of each server."""
    out = Families()
    for snapshot in snapshots:
        for endpoint in GENERIC_ENDPOINTS:
            body = getattr(snapshot, endpoint)
            if body is not None:
                generic(out, endpoint, snapshot.server_id, body)
        healthz(out, snapshot)
        jetstream(out, snapshot)
        own(out, snapshot)
    return list(out)
