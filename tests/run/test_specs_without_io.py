"""Specs without I/O: loading a scenario imports no network client, and the fault specs are the
registry's (every driver drives a kind the scenario union accepts, and only those)."""

from __future__ import annotations

import subprocess
import sys
import typing

from harness.faults import DRIVERS
from harness.specs.faults import Fault

NETWORK = ("nats", "httpx", "prometheus_api_client", "toxiproxy")


def test_importing_scenarios_and_specs_imports_no_network_client() -> None:
    probe = (
        "import sys, harness.scenario, harness.specs.faults, harness.checks.registry, "
        "harness.workload.spec, harness.workload.ledger\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {NETWORK!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", f"loading a scenario imported {out.strip()}"


def test_the_fault_union_is_exactly_the_drivers_specs() -> None:
    union, _ = typing.get_args(Fault)
    specs = set(typing.get_args(union))
    assert specs, "the fault union has no member"
    assert specs == {d.spec_model for d in DRIVERS.values()}
