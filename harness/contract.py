"""The alerting contract: what the team promises about each alert, kept apart from the rules.

The rules and routes in `deploy/` are the implementation under test; every alert check is
judged against this file (`scenarios/alerting-contract.yaml`), never against `deploy/`. All
durations are production time; `Objective.compressed` applies a target's profile.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from harness.config import Strict
from harness.durations import Duration
from harness.paths import project_root
from harness.yamlfile import load_model

CONTRACT_SCHEMA = "harness.contract/v1"
CONTRACT_FILE = "alerting-contract.yaml"

Op = Literal[">", ">=", "<", "<="]
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class Threshold(Strict):
    """Where the alert is meant to trip, on a signal defined over the metric contract."""

    text: str = Field(min_length=1)
    signal: str = Field(
        min_length=1, description="PromQL; `$window` is replaced by the window it is judged over"
    )
    op: Op
    value: float

    def tripped(self, observed: float) -> bool:
        return _OPS[self.op](observed, self.value)


class AlertContract(Strict):
    """One alert's promise to on-call."""

    basis: str = Field(min_length=1, description="where in the router's documents this comes from")
    labels: dict[str, str]
    carries: list[str] = Field(
        default_factory=list, description="labels every firing instance must carry (by() keys)"
    )
    receiver: str = Field(min_length=1)
    send_resolved: bool = True
    threshold: Threshold
    detect_within: Duration = Field(gt=0, description="fault start → firing")
    resolve_within: Duration = Field(gt=0, description="fault healed → resolved notification")

    @field_validator("labels")
    @classmethod
    def _severity(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("severity"):
            raise ValueError("labels must name the severity")
        return labels


class Contract(Strict):
    """Every alert's promise, by alert name."""

    schema_: Literal["harness.contract/v1"] = Field(alias="schema")
    version: int = Field(ge=1)
    notification_allowance: Duration = Field(
        gt=0,
        description="how long a firing notification may trail the firing alert (Alertmanager "
        "batches per group: one group_interval)",
    )
    alerts: dict[str, AlertContract] = Field(min_length=1)

    def get(self, alert: str) -> AlertContract | None:
        return self.alerts.get(alert)


def default_contract_path() -> Path:
    return project_root() / "scenarios" / CONTRACT_FILE


def load_contract(path: Path | str | None = None) -> Contract:
    """The contract file; every problem reported with its line and field."""
    return load_model(Contract, path or default_contract_path())
