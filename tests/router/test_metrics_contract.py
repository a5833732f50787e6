"""deploy/metrics-contract.yaml is well formed, and `--help` covers every option (the contract
against the /metrics of a running router: test_metrics_contract_live.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from router.config import options
from tests.router.conftest import REPO_ROOT

CONTRACT_PATH = REPO_ROOT / "deploy" / "metrics-contract.yaml"
TYPES = {"counter", "gauge", "histogram"}
OWN_PREFIXES = ("router_", "ctx_missing_headers")


def load_contract() -> dict[str, Any]:
    return yaml.safe_load(Path(CONTRACT_PATH).read_text())


def test_contract_is_well_formed() -> None:
    contract = load_contract()
    names = [m["name"] for m in contract["metrics"]]
    assert names, "the contract declares no metric"
    assert len(names) == len(set(names)), "duplicate metric names"
    for metric in contract["metrics"]:
        assert metric["type"] in TYPES, metric["name"]
        assert metric["name"].startswith(OWN_PREFIXES), metric["name"]
        assert metric["help"].strip(), metric["name"]
        assert isinstance(metric["labels"], list), metric["name"]
        # Exposed names: counters carry the _total suffix the exposition adds.
        assert metric["name"].endswith("_total") == (metric["type"] == "counter"), metric["name"]
        assert not {"msg_id", "request_id"} & set(metric.get("values", {})) or all(
            metric["values"][k] == "redacted"
            for k in ("msg_id", "request_id")
            if k in metric.get("values", {})
        ), f"{metric['name']}: msg_id/request_id must be redacted"
        assert set(metric.get("values", {})) <= set(metric["labels"]), metric["name"]


def test_help_documents_every_flag_and_env_var() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "router", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    flat = " ".join(out.split())
    assert options(), "the router declares no option"
    for opt in options():
        assert opt.flag in out, opt.flag
        assert f"(env {opt.env}; default " in flat, opt.field
    for flag in ("--serve-readyz", "--enable-fault-hook", "--max-reconnect-attempts"):
        assert flag in out, flag
