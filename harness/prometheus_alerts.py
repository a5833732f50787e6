"""Alerts as Prometheus stores and runs them, read through the Prometheus adapter into typed
records: the alerts active now, each label set's pending/firing evaluations (the `ALERTS`
series) and the alerting rule as loaded (its `for:`, group interval, health and last
evaluation).

The records are what the alert checks keep as observations; this module imports no network
client itself (it is handed a `PrometheusAPI`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from harness.prometheus import PrometheusAPI

__all__ = [
    "ActiveAlert",
    "AlertInstance",
    "LoadedRule",
    "active_alerts",
    "alerts_series",
    "loaded_rule",
    "parse_timestamp",
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoadedRule(_Record):
    """The rule as Prometheus loaded and runs it."""

    labels: dict[str, str] = Field(default_factory=dict)
    query: str = ""
    for_s: float = 0.0
    group_interval_s: float = 0.0
    health: str = ""
    last_error: str = ""
    last_evaluation: str | None = None

    @classmethod
    def from_api(cls, rule: dict[str, Any], group: dict[str, Any]) -> LoadedRule:
        return cls(
            labels=dict(rule.get("labels") or {}),
            query=str(rule.get("query", "")),
            for_s=float(rule.get("duration") or 0),
            group_interval_s=float(group.get("interval") or 0),
            health=str(rule.get("health", "")),
            last_error=str(rule.get("lastError") or ""),
            last_evaluation=rule.get("lastEvaluation"),
        )

    @property
    def last_evaluated_at(self) -> float | None:
        return parse_timestamp(self.last_evaluation)


class AlertInstance(_Record):
    """One label set of an alert in the `ALERTS` series, with its evaluation times."""

    labels: dict[str, str] = Field(default_factory=dict)
    pending: list[float] = Field(default_factory=list)
    firing: list[float] = Field(default_factory=list)


class ActiveAlert(_Record):
    """One pending or firing alert as `/api/v1/alerts` lists it."""

    model_config = ConfigDict(extra="ignore")  # Prometheus's own fields beyond these

    labels: dict[str, str] = Field(default_factory=dict)
    state: str = ""
    active_at: str | None = Field(None, alias="activeAt")

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


async def active_alerts(prometheus: PrometheusAPI) -> list[ActiveAlert]:
    """The alerts pending or firing right now."""
    return [ActiveAlert.model_validate(a) for a in await prometheus.alerts()]


async def alerts_series(
    prometheus: PrometheusAPI, alert: str, start: float, end: float
) -> list[AlertInstance]:
    """Evaluation times at which each label set of the alert was pending or firing, as
    Prometheus stored them (raw samples: no lookback smears a state past its end)."""
    series = await prometheus.raw_samples(f'ALERTS{{alertname="{alert}"}}', start, end)
    instances: dict[tuple, AlertInstance] = {}
    for s in series:
        labels = {k: v for k, v in s.labels.items() if k not in ("__name__", "alertstate")}
        key = tuple(sorted(labels.items()))
        instance = instances.setdefault(key, AlertInstance(labels=labels))
        times = [t for t, v in s.points if v == 1]
        if s.labels.get("alertstate") == "firing":
            instance.firing += times
        elif s.labels.get("alertstate") == "pending":
            instance.pending += times
    for instance in instances.values():
        instance.pending.sort()
        instance.firing.sort()
    return list(instances.values())


async def loaded_rule(prometheus: PrometheusAPI, alert: str) -> LoadedRule | None:
    """The alerting rule `alert` as Prometheus loaded it, or None when it has none."""
    found = await prometheus.alerting_rule(alert)
    return LoadedRule.from_api(*found) if found else None


def parse_timestamp(text: str | None) -> float | None:
    """Prometheus's RFC 3339 timestamps (`lastEvaluation`: nanoseconds, `Z`) as Unix seconds;
    None for none or Go's zero time."""
    if not text or text.startswith("0001-"):
        return None
    return datetime.fromisoformat(text).timestamp()
