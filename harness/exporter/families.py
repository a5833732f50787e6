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


def jetstream(out: Families, snapshot: Snapshot) -> None:
    """The official jsz collector's families (`-jsz=all`), from /jsz and /varz of one server."""
    jsz, varz = snapshot.jsz, snapshot.varz
    if jsz is None or varz is None:
        return  # the official collector skips a server when either request fails
    server_name = str(varz.get("server_name", ""))
    meta = jsz.get("meta_cluster")
    cluster_name = str(meta.get("name", "")) if meta else ""
    meta_leader = str(meta.get("leader", "")) if meta else ""
    is_meta_leader = "true" if meta is None or meta_leader == server_name else "false"
    config = jsz.get("config") or {}
    server = {
        "server_id": snapshot.server_id,
        "server_name": server_name,
        "cluster": cluster_name,
        "domain": str(config.get("domain", "")),
        "meta_leader": meta_leader,
        "is_meta_leader": is_meta_leader,
    }

    def put(family: str, help_text: str, labels: dict[str, str], value: Any) -> None:
        out.add(f"{JETSTREAM}_{family}", help_text, labels, float(value or 0))

    put("server_jetstream_disabled", "JetStream disabled or not", server, bool(jsz.get("disabled")))
    put("server_max_memory", "JetStream Max Memory", server, config.get("max_memory"))
    put("server_max_storage", "JetStream Max Storage", server, config.get("max_storage"))
    put("server_total_streams", "Total number of streams in JetStream", server, jsz.get("streams"))
    put(
        "server_total_consumers",
        "Total number of consumers in JetStream",
        server,
        jsz.get("consumers"),
    )
    put(
        "server_total_messages",
        "Total number of stored messages in JetStream",
        server,
        jsz.get("messages"),
    )
    put(
        "server_total_message_bytes",
        "Total number of bytes stored in JetStream",
        server,
        jsz.get("bytes"),
    )

    for account in jsz.get("account_details") or []:
        name = str(account.get("name", ""))
        acc = {
            **server,
            "account": name,
            "account_name": name,
            "account_id": str(account.get("id", "")),
        }
        put(
            "account_max_storage",
            "JetStream Account Max Storage in bytes",
            acc,
            account.get("reserved_storage"),
        )
        put(
            "account_max_memory",
            "JetStream Account Max Memory in bytes",
            acc,
            account.get("reserved_memory"),
        )
        put(
            "account_storage_used",
            "Total number of bytes used by JetStream storage",
            acc,
            account.get("storage"),
        )
        put(
            "account_memory_used",
            "Total number of bytes used by JetStream memory",
            acc,
            account.get("memory"),
        )
        for stream in account.get("stream_detail") or []:
            _stream(put, acc, server_name, stream)


def _stream(put: Any, acc: dict[str, str], server_name: str, stream: dict[str, Any]) -> None:
    cluster = stream.get("cluster")
    leader = str(cluster.get("leader", "")) if cluster else ""
    labels = {
        **acc,
        "stream_name": str(stream.get("name", "")),
        "stream_leader": leader,
        "is_stream_leader": "true" if cluster is None or leader == server_name else "false",
        "stream_raft_group": str(stream.get("stream_raft_group", "")),
    }
    state = stream.get("state") or {}
    put(
        "stream_total_messages",
        "Total number of messages from a stream",
        labels,
        state.get("messages"),
    )
    put("stream_total_bytes", "Total stored bytes from a stream", labels, state.get("bytes"))
    put("stream_first_seq", "First sequence from a stream", labels, state.get("first_seq"))
    put("stream_last_seq", "Last sequence from a stream", labels, state.get("last_seq"))
    put(
        "stream_consumer_count",
        "Total number of consumers from a stream",
        labels,
        state.get("consumer_count"),
    )
    put(
        "stream_subject_count",
        "Total number of subjects in a stream",
        labels,
        state.get("num_subjects"),
    )
    config = stream.get("config")
    if config is not None:
        put(
            "stream_limit_bytes",
            "The maximum configured storage limit (in bytes) for a "
            "JetStream stream. A value of -1 indicates no limit.",
            labels,
            config.get("max_bytes"),
        )
        put(
            "stream_limit_messages",
            "The maximum number of messages allowed in a JetStream "
            "stream as per its configuration. A value of -1 indicates no limit.",
            labels,
            config.get("max_msgs"),
        )
    for source in stream.get("sources") or []:
        external = source.get("external") or {}
        src = {
            **labels,
            "source_name": str(source.get("name", "")),
            "source_api": str(external.get("api", "")),
            "source_deliver": str(external.get("deliver", "")),
        }
        put(
            "stream_source_lag",
            "Number of messages a stream source is behind",
            src,
            source.get("lag"),
        )
        put(
            "stream_source_active_duration_ns",
            "Stream source active duration in nanoseconds (-1 indicates inactive)",
            src,
            source.get("active"),
        )
    mirror = stream.get("mirror")
    if mirror:
        external = mirror.get("external") or {}
        mir = {
            **labels,
            "mirror_name": str(mirror.get("name", "")),
            "mirror_api": str(external.get("api", "")),
            "mirror_deliver": str(external.get("deliver", "")),
        }
        put(
            "stream_mirror_lag",
            "Number of messages a stream mirror is behind",
            mir,
            mirror.get("lag"),
        )
        put(
            "stream_mirror_active_duration_ns",
            "Stream mirror active duration in nanoseconds (-1 indicates inactive)",
            mir,
            mirror.get("active"),
        )
    for consumer in stream.get("consumer_detail") or []:
        _consumer(put, labels, server_name, consumer)


def _consumer(put: Any, stream: dict[str, str], server_name: str, c: dict[str, Any]) -> None:
    cluster = c.get("cluster")
    leader = str(cluster.get("leader", "")) if cluster else ""
    labels = {
        **stream,
        "consumer_name": str(c.get("name", "")),
        "consumer_leader": leader,
        "is_consumer_leader": "true" if cluster is None or leader == server_name else "false",
        "consumer_desc": str((c.get("config") or {}).get("description", "")),
    }
    delivered = c.get("delivered") or {}
    ack_floor = c.get("ack_floor") or {}
    since = _seconds_between(c.get("ts"), delivered.get("last_active"))
    if since is not None:
        put(
            "consumer_last_delivery_seconds",
            "Seconds since last message delivery to consumer",
            labels,
            since,
        )
    since = _seconds_between(c.get("ts"), ack_floor.get("last_active"))
    if since is not None:
        put("consumer_last_ack_seconds", "Seconds since last ack from consumer", labels, since)
    put(
        "consumer_delivered_consumer_seq",
        "Latest sequence number of a stream consumer",
        labels,
        delivered.get("consumer_seq"),
    )
    put(
        "consumer_delivered_stream_seq",
        "Latest sequence number of a stream",
        labels,
        delivered.get("stream_seq"),
    )
    put(
        "consumer_num_ack_pending",
        "Number of pending acks from a consumer",
        labels,
        c.get("num_ack_pending"),
    )
    put(
        "consumer_num_redelivered",
        "Number of redelivered messages from a consumer",
        labels,
        c.get("num_redelivered"),
    )
    put(
        "consumer_num_waiting",
        "Number of inflight fetch requests from a pull consumer",
        labels,
        c.get("num_waiting"),
    )
    put(
        "consumer_num_pending",
        "Number of pending messages from a consumer",
        labels,
        c.get("num_pending"),
    )
    put(
        "consumer_ack_floor_stream_seq",
        "Number of ack floor stream seq from a consumer",
        labels,
        ack_floor.get("stream_seq"),
    )
    put(
        "consumer_ack_floor_consumer_seq",
        "Number of ack floor consumer seq from a consumer",
        labels,
        ack_floor.get("consumer_seq"),
    )


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
        if snapshot.varz is not None:
            generic(out, "varz", snapshot.server_id, snapshot.varz)
        if snapshot.routez is not None:
            generic(out, "routez", snapshot.server_id, snapshot.routez)
        healthz(out, snapshot)
        jetstream(out, snapshot)
        own(out, snapshot)
    return list(out)
