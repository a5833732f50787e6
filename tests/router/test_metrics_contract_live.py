"""deploy/metrics-contract.yaml against the /metrics of a running router: every metric declared
is exported with its type and labels, nothing undeclared is; and a plainly started router
serves no fault hook and no /readyz."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import NatsServer
from tests.router.conftest import RouterProcess, samples, scrape
from tests.router.test_metrics_contract import OWN_PREFIXES, load_contract

ALLOWLIST = ["tenant-a", "tenant-b"]
LABEL_TENANTS = ["tenant-x"]


def _allowed(
    spec: Any, vocabularies: dict[str, list[str]], subst: dict[str, str]
) -> set[str] | None:
    """Exact allowed values for a label, or None when the contract gives a note, not a list."""
    if isinstance(spec, list):
        resolved = set()
        for item in spec:
            text = str(item)
            for key, value in subst.items():
                text = text.replace("${" + key + "}", value)
            resolved.add(text)
        return resolved
    if spec in vocabularies:
        return set(vocabularies[spec])
    return None


@pytest.mark.live
def test_metrics_endpoint_matches_the_contract(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    contract = load_contract()
    router = start_router(
        nats_server.url,
        "--tenant-allowlist",
        ",".join(ALLOWLIST),
        "--label-tenants",
        ",".join(LABEL_TENANTS),
    )
    text = scrape(router.metrics_port)

    declared_types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M))
    exported_own = {name for name in declared_types if name.startswith(OWN_PREFIXES)}
    by_name = {m["name"]: m for m in contract["metrics"]}

    unexpected = exported_own - set(by_name)
    assert not unexpected, f"exported but not in the contract: {sorted(unexpected)}"
    missing = set(by_name) - exported_own
    assert not missing, f"in the contract but not exported: {sorted(missing)}"
    for name, metric in by_name.items():
        assert declared_types[name] == metric["type"], f"{name}: TYPE {declared_types[name]}"

    subst = {k: str(v) for k, v in contract["defaults"].items()}
    vocabularies: dict[str, list[str]] = {
        "nats_reason": contract["vocabularies"]["nats_reason"],
        "redacted": contract["vocabularies"]["redacted"],
        "tenant_id": sorted(ALLOWLIST + LABEL_TENANTS) + ["other", "unknown"],
    }
    seen: dict[str, int] = {}
    for sample_name, labels, _ in samples(text):
        family = _family_of(sample_name, by_name)
        if family is None:
            assert not sample_name.startswith(OWN_PREFIXES), f"stray sample {sample_name}"
            continue
        metric = by_name[family]
        seen[family] = seen.get(family, 0) + 1
        keys = set(labels) - ({"le"} if sample_name.endswith("_bucket") else set())
        assert keys == set(metric["labels"]), f"{sample_name}: label keys {sorted(keys)}"
        for key, spec in metric.get("values", {}).items():
            allowed = _allowed(spec, vocabularies, subst)
            if allowed is not None:
                assert labels[key] in allowed, f"{sample_name}: {key}={labels[key]!r}"

    # Counters alerts use exist at 0 before anything happened (first increment visible to rate()).
    for name, metric in by_name.items():
        if metric.get("preinitialised"):
            assert seen.get(name), f"{name} is not pre-initialised"
    status = [lbl["state"] for n, lbl, _ in samples(text) if n == "router_nats_connection_status"]
    assert status == ["connected"]


def _family_of(sample_name: str, by_name: dict[str, dict[str, Any]]) -> str | None:
    if sample_name in by_name:
        return sample_name
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample_name.removesuffix(suffix)
        if base != sample_name and by_name.get(base, {}).get("type") == "histogram":
            return base
    return None


@pytest.mark.live
def test_without_the_hook_and_readyz_the_router_serves_neither(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    """A router started plainly looks like one the team did not write: no /faults at all
    (404, as the harness's capability check expects), and /readyz gone when switched off."""
    router = start_router(nats_server.url, "--serve-readyz", "false")
    assert router.http("POST", "/faults", {"op": "ack", "mode": "error"})[0] == 404
    assert router.http("DELETE", "/faults")[0] == 404
    assert router.http("GET", "/faults")[0] == 404
    assert router.http("GET", "/readyz")[0] == 404
    assert router.http("GET", "/metrics")[0] == 200
