"""Fixtures of the exporter tests: real /varz, /routez, /jsz and /healthz answers of a 3-node
cluster slot (captured from `harness up --nats-cluster 3` with 20 messages through the router:
nats-server 2.15.1; meta leader harness-n2, router-stream led by harness-n1, router-dlq by
harness-n3), and the served families as name → (type, label names)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from harness.exporter.families import Snapshot, families

FIXTURES = Path(__file__).parent / "fixtures"
NODES = ("n1", "n2", "n3")


def answers(node: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{node}.json").read_text())


def snapshot(node: str, **override: Any) -> Snapshot:
    data = answers(node)
    fields = {k: data[k] for k in ("varz", "routez", "jsz", "healthz")}
    return Snapshot(f"harness-{node}", **{**fields, **override})


def cluster() -> list[Snapshot]:
    return [snapshot(n) for n in NODES]


def with_source_and_mirror(s: Snapshot) -> Snapshot:
    """The snapshot with a sourced and a mirrored stream added (the fixtures have neither)."""
    jsz = copy.deepcopy(s.jsz)
    assert jsz is not None
    streams = jsz["account_details"][0]["stream_detail"]
    sourced = copy.deepcopy(streams[0])
    sourced["name"] = "sourced"
    sourced["sources"] = [
        {
            "name": "upstream",
            "external": {"api": "$JS.hub.API", "deliver": ""},
            "lag": 7,
            "active": 250_000_000,
        }
    ]
    mirrored = copy.deepcopy(streams[0])
    mirrored["name"] = "mirrored"
    mirrored["mirror"] = {"name": "origin", "lag": 3, "active": 1_000_000}
    streams += [sourced, mirrored]
    return Snapshot(s.server_id, varz=s.varz, routez=s.routez, jsz=jsz, healthz=s.healthz)


def served(snapshots: list[Snapshot]) -> dict[str, tuple[str, set[str]]]:
    """name → (type, label names) of every served family; every sample has the same labels."""
    result = {}
    for family in families(snapshots):
        label_sets = {frozenset(sample.labels) for sample in family.samples}
        assert len(label_sets) == 1, f"{family.name} has samples with different label sets"
        result[family.name] = (family.type, set(next(iter(label_sets))))
    return result


def official_table() -> dict[str, Any]:
    return yaml.safe_load((FIXTURES / "official_families.yaml").read_text())
