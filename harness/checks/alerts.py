"""Alert checks: the alert went pending → firing within its latency budget, Alertmanager got
it, the notification reached the receiver, and it resolved after heal; forbidden alerts never
went pending.

The timeline is polled from Prometheus's alerts API every evaluation interval and confirmed
afterwards from the `ALERTS` series, which Prometheus writes itself at each evaluation (so a
polling gap cannot hide a state). The budget is computed from the rule as Prometheus loaded
it (time-compressed like the rules): scrape interval + the rule's widest range window (the
rate's warm-up) + `for:` + two evaluation intervals; Alertmanager's `group_wait` is added
for the notification.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import yaml

from harness.checks.base import Check, CheckResult, RunView
from harness.durations import parse_duration
from harness.prometheus import PrometheusAPI, PrometheusError
from harness.rulefiles import alert_rules

_RANGE = re.compile(r"\[\s*([0-9a-z]+)\s*(?::[^\]]*)?\]")


def widest_window(expr: str) -> float:
    """Seconds of the widest range window in `expr` (0 when it has none)."""
    windows = []
    for text in _RANGE.findall(expr):
        try:
            windows.append(parse_duration(text))
        except ValueError:
            continue
    return max(windows, default=0.0)


def _run_start(run: RunView) -> float:
    """Where alert timelines start: the baseline, since preflight made sure the scenario's
    alerts were inactive by then (it may have waited for an earlier scenario's to resolve)."""
    first = run.window("baseline") or run.window("preflight")
    return first.start if first else time.time()


def _fault_start(run: RunView) -> float | None:
    applied = [f.applied_at for f in run.faults if getattr(f, "applied_at", None)]
    return min(applied) if applied else None


async def alertmanager_alerts(url: str, name: str) -> list[dict[str, Any]]:
    """Alertmanager's alerts named `name` (active, silenced, inhibited, unprocessed)."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            f"{url}/api/v2/alerts", params={"filter": f'alertname="{name}"'}
        )
        response.raise_for_status()
        return response.json()


async def alertmanager_group_wait(url: str) -> float:
    """`group_wait` of Alertmanager's root route, from its running configuration."""
    async with httpx.AsyncClient(timeout=5) as client:
        status = (await client.get(f"{url}/api/v2/status")).json()
    config = yaml.safe_load(status.get("config", {}).get("original", "")) or {}
    return parse_duration(str(config.get("route", {}).get("group_wait", "30s")))


async def expected_receivers(config: Path, labels: dict[str, str]) -> list[str] | None:
    """The receivers the reference Alertmanager config routes `labels` to (amtool decides,
    exactly as Alertmanager would); None when amtool or the config is not available."""
    amtool = shutil.which("amtool")
    if amtool is None or not await anyio.Path(config).exists():
        return None
    args = [amtool, "config", "routes", "test", f"--config.file={config}"]
    args += [f"{k}={v}" for k, v in sorted(labels.items())]
    result = await anyio.run_process(args, check=False)
    if result.returncode != 0:
        return None
    return result.stdout.decode().strip().split(",") if result.stdout.strip() else []


async def notifications(webhook_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{webhook_url}/notifications")
        response.raise_for_status()
        return response.json()


def _named(notification: dict[str, Any], name: str) -> list[dict[str, Any]]:
    alerts = notification.get("payload", {}).get("alerts", [])
    return [a for a in alerts if a.get("labels", {}).get("alertname") == name]


class AlertFiredCheck(Check):
    """One expected alert, followed from Prometheus to the notification and back to resolved."""

    kind = "alert"

    def __init__(
        self,
        alert: str,
        prometheus: PrometheusAPI,
        *,
        resolve_after_heal: bool,
        rules_dir: Path,
        alertmanager_config: Path,
    ):
        super().__init__(f"alert {alert} fires")
        self.alert = alert
        self.rules_dir = rules_dir
        self.alertmanager_config = alertmanager_config
        self.prometheus = prometheus
        self.resolve_after_heal = resolve_after_heal
        self.polled: list[dict[str, Any]] = []  # transitions seen by polling
        self.am_seen: dict[str, Any] | None = None
        self._budget: dict[str, Any] | None = None
        self.poll_errors: list[str] = []
        self._state = "inactive"

    async def observe(self, run: RunView) -> None:
        interval = max(0.5, run.target.profile.evaluation_interval)
        while True:
            await self._poll(run)
            await anyio.sleep(interval)

    async def _poll(self, run: RunView) -> None:
        now = time.time()
        try:
            active = [
                a
                for a in await self.prometheus.alerts()
                if a["labels"].get("alertname") == self.alert
            ]
        except PrometheusError as exc:
            self.poll_errors.append(str(exc))
            return
        state = (
            "firing"
            if any(a["state"] == "firing" for a in active)
            else ("pending" if active else "inactive")
        )
        if state != self._state:
            self.polled.append(
                {"state": state, "at": now, "active_at": [a.get("activeAt") for a in active]}
            )
            self._state = state
        if self.am_seen is None and state == "firing":
            try:
                seen = await alertmanager_alerts(run.target.alertmanager_url, self.alert)
            except (httpx.HTTPError, ValueError) as exc:
                self.poll_errors.append(f"Alertmanager: {exc}")
                return
            if seen:
                self.am_seen = {
                    "at": now,
                    "state": [a.get("status", {}).get("state") for a in seen],
                    "receivers": sorted({r["name"] for a in seen for r in a.get("receivers", [])}),
                    "starts_at": [a.get("startsAt") for a in seen],
                }

    async def settle(self, run: RunView) -> None:
        """Wait until the alert is no longer active after heal, at most its resolve budget."""
        if not self.resolve_after_heal:
            return
        heal = run.window("heal")
        try:
            budget = await self.budget(run)
        except (LookupError, PrometheusError, httpx.HTTPError, ValueError):
            return
        deadline = (heal.end if heal and heal.end else time.time()) + budget["resolve_s"] + 2
        interval = max(0.5, run.target.profile.evaluation_interval)
        while time.time() < deadline:
            await self._poll(run)
            if self._state == "inactive":
                return
            await anyio.sleep(interval)

    async def budget(self, run: RunView) -> dict[str, Any]:
        """The latency budget from the reference rule in `deploy/` (compressed for the target's
        profile), so a drifted rule on the target is judged against what it should be.
        Computed once per run: neither the rules nor the routing change under it."""
        if self._budget is None:
            self._budget = await self._compute_budget(run)
        return self._budget

    async def _compute_budget(self, run: RunView) -> dict[str, Any]:
        loaded = await self.prometheus.alerting_rule(self.alert)
        if loaded is None:
            raise LookupError(f"Prometheus has no alerting rule {self.alert!r} loaded")
        profile = run.target.profile
        reference = alert_rules(self.rules_dir, profile).get(self.alert)
        if reference is not None:
            rule, group, _ = reference
            source = "deploy rules"
            evaluation = (
                parse_duration(str(group.get("interval", "0s"))) or profile.evaluation_interval
            )
            window = widest_window(str(rule.get("expr", "")))
            hold = parse_duration(str(rule.get("for", "0s")))
            keep = parse_duration(str(rule.get("keep_firing_for", "0s")))
        else:
            rule, group = loaded
            source = "loaded rule"
            evaluation = float(group.get("interval") or profile.evaluation_interval)
            window = widest_window(rule.get("query", ""))
            hold = float(rule.get("duration", 0))
            keep = float(rule.get("keepFiringFor", 0) or 0)
        group_wait = await alertmanager_group_wait(run.target.alertmanager_url)
        fire = profile.scrape_interval + window + hold + 2 * evaluation
        return {
            "source": source,
            "scrape_interval_s": profile.scrape_interval,
            "rule_window_s": window,
            "for_s": hold,
            "evaluation_interval_s": evaluation,
            "group_wait_s": group_wait,
            "fire_s": fire,
            "notify_s": fire + evaluation + group_wait + 1.0,
            # the last bad sample is scraped, slides out of the window, one evaluation sees it
            "settle_allowance_s": run.scenario.expect.alerts.settle_allowance,
            "resolve_s": 2 * profile.scrape_interval
            + window
            + keep
            + 2 * evaluation
            + run.scenario.expect.alerts.settle_allowance,
            "loaded_for_s": float(loaded[0].get("duration", 0)),
            "loaded_labels": dict(loaded[0].get("labels", {})),
            "loaded_query": loaded[0].get("query", ""),
        }

    async def _server_side(self, start: float, end: float) -> dict[str, list[float]]:
        """Evaluation times at which the `ALERTS` series had each state, as Prometheus stored
        them (raw samples: no lookback smears a state past its end)."""
        series = await self.prometheus.raw_samples(
            f'ALERTS{{alertname="{self.alert}"}}', start, end
        )
        times: dict[str, list[float]] = {"pending": [], "firing": []}
        for s in series:
            state = s.labels.get("alertstate", "")
            times.setdefault(state, []).extend(t for t, v in s.points if v == 1)
        return {k: sorted(set(v)) for k, v in times.items()}

    async def verdict(self, run: RunView) -> CheckResult:
        await self._poll(run)  # the state right now, too
        start, now = _run_start(run), time.time()
        fault_start = _fault_start(run)
        heal = run.window("heal")
        evidence: dict[str, Any] = {
            "alert": self.alert,
            "polled": self.polled,
            "poll_errors": self.poll_errors[-5:],
        }
        try:
            budget = await self.budget(run)
            step = max(0.5, budget["evaluation_interval_s"])
            server = await self._server_side(start, now)
        except LookupError as exc:
            return self.error(str(exc), **evidence)
        except (PrometheusError, httpx.HTTPError, ValueError) as exc:
            return self.error(f"cannot evaluate: {exc}", **evidence)
        evidence.update(budget=budget, alerts_series=server, fault_start=fault_start)
        if fault_start is None:
            return self.error("no fault was applied; nothing to measure from", **evidence)
        failures: list[str] = []
        firing = server.get("firing", [])
        polled_firing = [p["at"] for p in self.polled if p["state"] == "firing"]
        first_firing = min(firing[:1] + polled_firing[:1], default=None)
        pending = server.get("pending", [])
        evidence["first_pending"] = pending[0] if pending else None
        evidence["first_firing"] = first_firing
        if first_firing is None:
            return CheckResult(
                self.name,
                self.kind,
                "fail",
                "never fired (no firing sample in ALERTS, never firing when polled)",
                evidence,
            )
        time_to_fire = first_firing - fault_start
        evidence["time_to_fire_s"] = round(time_to_fire, 3)
        if time_to_fire < 0:
            return CheckResult(
                self.name,
                self.kind,
                "fail",
                f"already firing {-time_to_fire:.1f}s before the fault",
                evidence,
            )
        if time_to_fire > budget["fire_s"]:
            failures.append(
                f"time to fire {time_to_fire:.1f}s exceeds its budget {budget['fire_s']:.1f}s"
            )
        evidence["alertmanager"] = self.am_seen
        if self.am_seen is None:
            failures.append("Alertmanager never listed it")
        delivered = await self._delivered(run, evidence)
        if isinstance(delivered, str):
            return self.error(delivered, **evidence)
        if delivered is None:
            where = ", ".join(evidence.get("expected_receivers") or ["any receiver"])
            wrong = evidence.get("misrouted_to")
            failures.append(
                f"notification not delivered to {where}"
                + (f" (it went to {', '.join(wrong)})" if wrong else "")
            )
        else:
            evidence["time_to_notify_s"] = round(delivered - fault_start, 3)
            if delivered - fault_start > budget["notify_s"]:
                failures.append(
                    f"notification after {delivered - fault_start:.1f}s exceeds budget "
                    f"{budget['notify_s']:.1f}s"
                )
        if self.resolve_after_heal and heal is not None and heal.end is not None:
            # Resolved at the first evaluation without a firing sample; still firing if the
            # poll says so or the last firing sample is from the latest evaluation.
            last_firing = firing[-1] if firing else first_firing
            still = self._state == "firing" or last_firing >= now - 1.5 * step
            resolved_at = None if still else last_firing + step
            evidence["resolved_at"] = resolved_at
            if resolved_at is None:
                failures.append("still firing after heal")
            else:
                after = max(0.0, resolved_at - heal.end)
                evidence["resolve_after_heal_s"] = round(after, 3)
                if after > budget["resolve_s"]:
                    failures.append(
                        f"resolved {after:.1f}s after heal, budget {budget['resolve_s']:.1f}s"
                    )
        summary = f"fired {time_to_fire:.1f}s after the fault (budget {budget['fire_s']:.1f}s)"
        if failures:
            return CheckResult(self.name, self.kind, "fail", "; ".join(failures), evidence)
        return CheckResult(self.name, self.kind, "pass", summary, evidence)

    async def _delivered(self, run: RunView, evidence: dict[str, Any]) -> float | None | str:
        """When the first firing notification for this alert arrived (str = cannot check)."""
        url = run.target.webhook_url
        if not url:
            return "target has no webhook_url: notification delivery cannot be checked"
        try:
            received = await notifications(url)
        except (httpx.HTTPError, ValueError) as exc:
            return f"webhook receiver {url}: {exc}"
        start = _run_start(run)
        mine = [
            {
                "received_at": n["received_at"],
                "receiver": n["receiver"],
                "status": n["payload"].get("status"),
            }
            for n in received
            if n["received_at"] >= start and _named(n, self.alert)
        ]
        evidence["notifications"] = mine
        firing = [n for n in mine if n["status"] == "firing"]
        labels = {"alertname": self.alert, **(await self.budget(run))["loaded_labels"]}
        expected = await expected_receivers(self.alertmanager_config, labels)
        evidence["expected_receivers"] = expected
        if expected is not None:
            misrouted = [n for n in firing if n["receiver"] not in expected]
            if misrouted and len(misrouted) == len(firing):
                evidence["misrouted_to"] = sorted({n["receiver"] for n in misrouted})
            firing = [n for n in firing if n["receiver"] in expected]
        return min(n["received_at"] for n in firing) if firing else None


class ForbiddenAlertCheck(Check):
    """An alert that must not go pending at any time during the run."""

    kind = "alert_forbidden"

    def __init__(self, alert: str, prometheus: PrometheusAPI):
        super().__init__(f"alert {alert} stays silent")
        self.alert = alert
        self.prometheus = prometheus
        self.seen: list[dict[str, Any]] = []
        self.poll_errors: list[str] = []

    async def observe(self, run: RunView) -> None:
        interval = max(0.5, run.target.profile.evaluation_interval)
        while True:
            try:
                for a in await self.prometheus.alerts():
                    if a["labels"].get("alertname") == self.alert:
                        self.seen.append(
                            {"state": a["state"], "at": time.time(), "labels": a["labels"]}
                        )
            except PrometheusError as exc:
                self.poll_errors.append(str(exc))
            await anyio.sleep(interval)

    async def verdict(self, run: RunView) -> CheckResult:
        start, now = _run_start(run), time.time()
        query = f'ALERTS{{alertname="{self.alert}"}}'
        try:
            series = await self.prometheus.raw_samples(query, start, now)
            loaded = await self.prometheus.alerting_rule(self.alert)
        except PrometheusError as exc:
            return self.error(f"cannot evaluate: {exc}", polled=self.seen[:20])
        if loaded is None:
            return self.error(f"Prometheus has no alerting rule {self.alert!r} loaded")
        samples = [
            {"alertstate": s.labels.get("alertstate"), "at": t}
            for s in series
            for t, v in s.points
            if v == 1
        ]
        evidence = {
            "query": query,
            "range": [start, now],
            "samples": samples[:50],
            "polled": self.seen[:20],
            "poll_errors": self.poll_errors[-5:],
        }
        if samples or self.seen:
            first = min([x["at"] for x in samples] + [x["at"] for x in self.seen])
            state = (samples or self.seen)[0].get("alertstate") or self.seen[0]["state"]
            return CheckResult(
                self.name,
                self.kind,
                "fail",
                f"went {state} at {time.strftime('%H:%M:%S', time.localtime(first))}",
                evidence,
            )
        return CheckResult(self.name, self.kind, "pass", "never pending or firing", evidence)
