"""Conversion of stored /varz, /routez, /jsz and /healthz answers into metric values."""

from __future__ import annotations

from prometheus_client.core import Metric

from harness.exporter.families import Snapshot, families
from tests.exporter.support import answers, cluster, snapshot, with_source_and_mirror


def values(metrics: list[Metric], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """labels (sorted items) → value of every sample of family `name`."""
    found = {}
    for family in metrics:
        if family.name == name:
            for sample in family.samples:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def one(metrics: list[Metric], name: str, **labels: str) -> float:
    matches = [
        v
        for key, v in values(metrics, name).items()
        if all(dict(key).get(k) == want for k, want in labels.items())
    ]
    assert len(matches) == 1, f"{name}{labels}: {len(matches)} samples"
    return matches[0]


def test_varz_numbers_times_and_strings() -> None:
    metrics = families([snapshot("n1")])
    varz = answers("n1")["varz"]
    assert one(metrics, "gnatsd_varz_connections") == varz["connections"]
    assert one(metrics, "gnatsd_varz_routes") == varz["routes"] == 8
    assert (
        one(metrics, "gnatsd_varz_jetstream_config_max_storage")
        == (varz["jetstream"]["config"]["max_storage"])
    )
    assert one(metrics, "gnatsd_varz_server_name", value="harness-n1") == 1
    assert one(metrics, "gnatsd_varz_jetstream_meta_leader", value="harness-n2") == 1
    start_ms = one(metrics, "gnatsd_varz_start")
    assert 1.7e12 < start_ms < 2e12  # epoch milliseconds, as parseDateString gives
    # /varz http_req_stats has keys like "/varz": "/" becomes "_", "__" collapses
    assert one(metrics, "gnatsd_varz_http_req_stats_varz") >= 1
    assert not values(metrics, "gnatsd_varz_now")  # a string outside the label keys: skipped
    assert not values(metrics, "gnatsd_varz_cluster_cluster_port")  # on the skip list


def test_routez() -> None:
    metrics = families(cluster())
    assert one(metrics, "gnatsd_routez_num_routes", server_id="harness-n2") == 8
    for node in ("n1", "n2", "n3"):
        assert one(metrics, "harness_nats_route_peers", server_id=f"harness-{node}") == 2


def test_healthz_ok_failing_and_unreachable() -> None:
    failing = snapshot("n2", healthz={"status": "unavailable", "error": "JetStream not current"})
    gone = Snapshot("harness-n3", errors={"healthz": "ConnectError: refused"})
    metrics = families([snapshot("n1"), failing, gone])
    assert one(metrics, "gnatsd_healthz_status", server_id="harness-n1") == 0
    assert one(metrics, "gnatsd_healthz_status", server_id="harness-n2") == 1
    assert not [k for k in values(metrics, "gnatsd_healthz_status") if "harness-n3" in str(k)]
    assert one(metrics, "gnatsd_healthz_status_value", server_id="harness-n1", value="ok") == 1
    assert (
        one(metrics, "gnatsd_healthz_status_value", server_id="harness-n2", value="unavailable")
        == 0
    )
    assert (
        one(metrics, "gnatsd_healthz_status_value", server_id="harness-n3", value="unreachable")
        == 0
    )
    assert (
        one(metrics, "harness_nats_exporter_poll_ok", server_id="harness-n3", endpoint="varz") == 0
    )


def test_jetstream_server_stream_and_consumer() -> None:
    metrics = families(cluster())
    n1 = dict(server_id="harness-n1")
    assert one(metrics, "jetstream_server_total_streams", **n1) == 2
    assert one(metrics, "jetstream_server_total_streams", is_meta_leader="true") == 2  # n2
    leader = one(
        metrics,
        "jetstream_stream_last_seq",
        stream_name="router-stream",
        is_stream_leader="true",
    )
    assert leader == 20
    assert (
        one(
            metrics,
            "jetstream_stream_total_messages",
            server_id="harness-n3",
            stream_name="router-stream",
            stream_leader="harness-n1",
            cluster="harness-cluster",
            meta_leader="harness-n2",
            is_meta_leader="false",
            account="$G",
        )
        == 20
    )
    assert one(metrics, "jetstream_stream_limit_messages", stream_name="router-stream", **n1) == -1
    delivered = one(
        metrics,
        "jetstream_consumer_delivered_stream_seq",
        consumer_name="router-decide-consumer",
        is_consumer_leader="true",
    )
    assert delivered == 20
    assert (
        one(
            metrics,
            "jetstream_consumer_num_ack_pending",
            consumer_name="router-decide-consumer",
            **n1,
        )
        == 0
    )
    since = one(metrics, "jetstream_consumer_last_delivery_seconds", **n1)
    assert 0 <= since < 5  # ts minus delivered.last_active of the capture


def test_sources_mirrors_accounts_and_absent_values_from_the_tables() -> None:
    n1 = snapshot("n1")
    metrics = families([with_source_and_mirror(n1)])
    source = dict(stream_name="sourced", source_name="upstream", source_api="$JS.hub.API")
    assert one(metrics, "jetstream_stream_source_lag", **source) == 7
    assert one(metrics, "jetstream_stream_source_active_duration_ns", **source) == 250_000_000
    mirror = dict(stream_name="mirrored", mirror_name="origin", mirror_api="", mirror_deliver="")
    assert one(metrics, "jetstream_stream_mirror_lag", **mirror) == 3
    assert one(metrics, "jetstream_stream_mirror_active_duration_ns", **mirror) == 1_000_000
    account = n1.jsz["account_details"][0]  # type: ignore[index]
    used = one(metrics, "jetstream_account_storage_used", account=account["name"])
    assert used == account["storage"]
    # A stream without `config` has no limit families; a consumer's missing numbers read 0.
    jsz = answers("n1")["jsz"]
    stream = jsz["account_details"][0]["stream_detail"][0]
    del stream["config"]
    consumer = stream["consumer_detail"][0]
    del consumer["num_pending"], consumer["delivered"]
    bare = families([snapshot("n1", jsz=jsz)])
    name = dict(stream_name=stream["name"])
    limits = values(bare, "jetstream_stream_limit_bytes")
    assert limits and not [k for k in limits if ("stream_name", stream["name"]) in k]
    assert one(bare, "jetstream_stream_total_messages", **name) == stream["state"]["messages"]
    c = dict(consumer_name=consumer["name"])
    assert one(bare, "jetstream_consumer_num_pending", **c) == 0
    assert one(bare, "jetstream_consumer_delivered_stream_seq", **c) == 0
    since = values(bare, "jetstream_consumer_last_delivery_seconds")
    assert not [k for k in since if ("consumer_name", consumer["name"]) in k]
    assert one(bare, "jetstream_consumer_last_ack_seconds", **c) >= 0


def test_own_leader_and_replica_families() -> None:
    metrics = families(cluster())
    stream = dict(stream_name="router-stream")
    for node in ("n1", "n2", "n3"):
        assert (
            one(metrics, "harness_nats_stream_leader_known", server_id=f"harness-{node}", **stream)
            == 1
        )
        assert one(metrics, "harness_nats_meta_leader_known", server_id=f"harness-{node}") == 1
    assert one(metrics, "harness_nats_stream_replicas", server_id="harness-n1", **stream) == 3
    # Replicas only from the leader's view: n1 leads router-stream and lists n2 and n3.
    current = values(metrics, "harness_nats_stream_replica_current")
    reporters = {dict(k)["server_id"] for k in current if dict(k)["stream_name"] == "router-stream"}
    assert reporters == {"harness-n1"}
    for replica in ("harness-n2", "harness-n3"):
        assert one(metrics, "harness_nats_stream_replica_current", replica=replica, **stream) == 1
        assert one(metrics, "harness_nats_stream_replica_offline", replica=replica, **stream) == 0
        assert one(metrics, "harness_nats_stream_replica_lag", replica=replica, **stream) == 0
    meta = {dict(k)["server_id"] for k in values(metrics, "harness_nats_meta_replica_current")}
    assert meta == {"harness-n2"}


def test_a_leaderless_stream_and_a_lagging_replica() -> None:
    n1 = answers("n1")
    stream = n1["jsz"]["account_details"][0]["stream_detail"][0]
    assert stream["name"] == "router-stream"
    stream["cluster"]["replicas"][1].update(current=False, offline=True, lag=42)
    lagging = Snapshot("harness-n1", varz=n1["varz"], routez=n1["routez"], jsz=n1["jsz"])
    metrics = families([lagging])
    labels = dict(stream_name="router-stream", replica="harness-n3")
    assert one(metrics, "harness_nats_stream_replica_current", **labels) == 0
    assert one(metrics, "harness_nats_stream_replica_offline", **labels) == 1
    assert one(metrics, "harness_nats_stream_replica_lag", **labels) == 42
    del stream["cluster"]["leader"]
    metrics = families([lagging])
    assert one(metrics, "harness_nats_stream_leader_known", stream_name="router-stream") == 0
    assert not values(metrics, "harness_nats_stream_replica_current")  # no leader, no view
    assert (
        one(
            metrics,
            "jetstream_stream_total_messages",
            stream_name="router-stream",
            stream_leader="",
            is_stream_leader="false",
        )
        == 20
    )


def test_a_server_that_does_not_answer_has_only_its_failure_series() -> None:
    metrics = families([Snapshot("harness-n1", errors={"varz": "timeout"})])
    names = {f.name for f in metrics if f.samples}
    assert names == {"gnatsd_healthz_status_value", "harness_nats_exporter_poll_ok"}
