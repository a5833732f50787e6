"""Dashboard checks: the panel a scenario names exists, and its queries returned data during
the fault window (on the same Prometheus, with Grafana's variables filled in)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from harness.checks.base import Check, CheckResult, RunView
from harness.durations import format_duration
from harness.prometheus import PrometheusAPI, PrometheusError
from harness.scenario import PanelRef


def load_dashboards(directory: Path) -> dict[str, dict[str, Any]]:
    """Dashboards by uid and by file stem."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text())
        found[path.stem] = doc
        if doc.get("uid"):
            found[doc["uid"]] = doc
    return found


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every non-row panel, including those folded inside collapsed rows."""
    out = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def fill_variables(expr: str, *, scrape: float, window: float) -> str:
    """Grafana's built-in variables as Grafana would set them for this window."""
    rate_interval = format_duration(4 * scrape)  # Grafana: four scrape intervals at least
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace("${__rate_interval}", rate_interval)
        .replace("$__interval", format_duration(scrape))
        .replace("$__range", format_duration(math.ceil(window)))
    )


class PanelCheck(Check):
    kind = "dashboard"

    def __init__(self, ref: PanelRef, prometheus: PrometheusAPI, dashboards_dir: Path):
        super().__init__(f"panel {ref.dashboard} / {ref.panel}")
        self.ref = ref
        self.prometheus = prometheus
        self.dashboards_dir = dashboards_dir

    async def verdict(self, run: RunView) -> CheckResult:
        dashboards = load_dashboards(self.dashboards_dir)
        dashboard = dashboards.get(self.ref.dashboard)
        if dashboard is None:
            return CheckResult(
                self.name,
                self.kind,
                "fail",
                f"no dashboard {self.ref.dashboard!r} in {self.dashboards_dir}",
                {"dashboards": sorted(dashboards)},
            )
        panel = next((p for p in panels(dashboard) if p.get("title") == self.ref.panel), None)
        if panel is None:
            return CheckResult(
                self.name,
                self.kind,
                "fail",
                f"dashboard {self.ref.dashboard!r} has no panel {self.ref.panel!r}",
                {"panels": [p.get("title") for p in panels(dashboard)]},
            )
        inject, heal = run.window("inject"), run.window("heal")
        if inject is None or heal is None:
            return self.error("run ended before the fault window")
        start, end = inject.start, heal.end or heal.start
        scrape = run.target.profile.scrape_interval
        queries = []
        for target in panel.get("targets", []):
            expr = fill_variables(target.get("expr", ""), scrape=scrape, window=end - start)
            try:
                series = await self.prometheus.range(expr, start, end, max(scrape, 1.0))
            except PrometheusError as exc:
                return self.error(f"query failed: {exc}", queries=queries)
            points = sum(1 for s in series for _, v in s.points if not math.isnan(v))
            queries.append(
                {
                    "refId": target.get("refId"),
                    "query": expr,
                    "range": [start, end],
                    "series": len(series),
                    "points": points,
                    "result": [{"labels": s.labels, "points": s.points[-10:]} for s in series[:10]],
                }
            )
        evidence = {
            "panel_id": panel.get("id"),
            "description": panel.get("description"),
            "queries": queries,
        }
        if not queries:
            return CheckResult(self.name, self.kind, "fail", "panel has no query", evidence)
        empty = [q["refId"] for q in queries if q["points"] == 0]
        if len(empty) == len(queries):
            return CheckResult(
                self.name,
                self.kind,
                "fail",
                "no query of the panel returned data in the fault window",
                evidence,
            )
        return CheckResult(
            self.name,
            self.kind,
            "pass",
            f"{sum(q['points'] for q in queries)} points in the fault window",
            evidence,
        )
