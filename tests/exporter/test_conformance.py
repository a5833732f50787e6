"""The embedded exporter serves the official prometheus-nats-exporter's names, labels and types
(the table in fixtures/official_families.yaml, read from its source), and nothing else outside
its own `harness_nats_` prefix, whose families are in the metric contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.exporter.support import cluster, official_table, served, with_source_and_mirror

CONTRACT = Path(__file__).parents[2] / "deploy" / "metrics-contract.yaml"
TABLE = official_table()


@pytest.fixture(scope="module")
def families() -> dict[str, tuple[str, set[str]]]:
    return served([with_source_and_mirror(s) for s in cluster()])


@pytest.mark.parametrize("entry", TABLE["families"], ids=lambda e: e["name"])
def test_every_official_family_is_served_alike(
    entry: dict, families: dict[str, tuple[str, set[str]]]
) -> None:
    assert entry["name"] in families, f"{entry['name']} is not served"
    kind, labels = families[entry["name"]]
    assert kind == entry["type"]
    assert labels == set(entry["labels"])


def test_the_generic_families_follow_the_official_rule(
    families: dict[str, tuple[str, set[str]]],
) -> None:
    """Outside the table, gnatsd_varz_* / gnatsd_routez_* are what objectToMetrics makes:
    gauges labelled server_id (numbers, times) or server_id + value (the label keys only)."""
    generic = TABLE["generic"]
    prefixes = tuple(f"{generic['namespace']}_{e}_" for e in generic["endpoints"])
    label_keys = tuple(generic["label_keys"])
    listed = {e["name"] for e in TABLE["families"]}
    for name, (kind, labels) in families.items():
        if name in listed or name.startswith("harness_nats_"):
            continue
        assert name.startswith(prefixes), f"{name}: neither official nor ours"
        assert kind == "gauge"
        assert labels in ({"server_id"}, {"server_id", "value"}), name
        if labels == {"server_id", "value"}:
            assert name.endswith(label_keys), f"{name}: a string outside the label keys"
        for skipped in generic["skip"]:
            assert not re.fullmatch(rf"gnatsd_(varz|routez)_{skipped}", name), name


def test_own_families_are_in_the_metric_contract(
    families: dict[str, tuple[str, set[str]]],
) -> None:
    contract = yaml.safe_load(CONTRACT.read_text())["nats_exporter"]
    declared = {m["name"]: (m["type"], set(m["labels"])) for m in contract["metrics"]}
    ours = {n: f for n, f in families.items() if n.startswith(contract["prefix"])}
    assert ours == declared
