"""Typed access to Prometheus: samples as floats with label sets and timestamps, never raw JSON.

Queries go through prometheus-api-client in a worker thread (it is blocking), retried once at
most (a Prometheus that is down is reported in well under 2 s a query, naming the URL, the
query, the root cause and the attempts); the alerts and rules APIs, which that client does not
cover, go through httpx.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio
import httpx
import yaml
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from harness.durations import format_duration, parse_duration
from harness.errors import PrometheusError
from harness.http import async_client

__all__ = ["PrometheusAPI", "PrometheusError", "Sample", "Series", "total"]


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float
    timestamp: float


@dataclass
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]] = field(default_factory=list)


def _value(raw: str) -> float:
    return float(raw) if raw not in ("NaN", "+Inf", "-Inf") else float(raw.replace("+", ""))


RETRIES = 1
"""A query that could not connect, or had a 429/5xx answer, is tried once more (the client's
default is 3 retries with exponential backoff: about 6 s before a Prometheus that is down is
reported). A read timeout is not retried: a hung Prometheus would only double it."""
BACKOFF_S = 0.25
"""The pause before the retry."""
CONNECT_TIMEOUT_S = 2.0
"""How long one attempt may wait for a connection (the read timeout is the adapter's
`timeout`)."""
RETRY_ON_STATUS = (408, 429, 500, 502, 503, 504)


class _Retry(Retry):
    """urllib3's retry with a constant pause (its own backoff is 0 before the first retry)."""

    def get_backoff_time(self) -> float:
        return BACKOFF_S if self.history else 0.0


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error of requests' wrapping (ConnectionError → MaxRetryError →
    NewConnectionError → ConnectionRefusedError): what actually went wrong."""
    while True:
        reason = getattr(exc, "reason", None)
        arg = exc.args[0] if exc.args else None
        inner = next(
            (e for e in (reason, arg, exc.__cause__) if isinstance(e, BaseException)), None
        )
        if inner is None or inner is exc:
            return exc
        exc = inner


class PrometheusAPI:
    """One Prometheus server."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        retry = _Retry(
            total=RETRIES, read=0, status_forcelist=RETRY_ON_STATUS, raise_on_status=False
        )
        self._client = PrometheusConnect(
            url=self.url,
            disable_ssl=True,
            timeout=(min(CONNECT_TIMEOUT_S, timeout), timeout),  # type: ignore[arg-type]
            retry=retry,
        )

    async def _run(self, what: str, call: Any) -> Any:
        began = time.monotonic()
        try:
            with anyio.fail_after(self.timeout + CONNECT_TIMEOUT_S + BACKOFF_S + 2):
                return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except TimeoutError as exc:
            raise PrometheusError(f"{self.url}: {what}: no answer in {self.timeout:g}s") from exc
        except Exception as exc:  # requests' errors and anything else the client raises
            took = f"{time.monotonic() - began:.1f}s"
            if isinstance(exc, PrometheusApiClientException):
                cause = str(exc)  # Prometheus answered: its status and error
                status = re.match(r"HTTP Status Code (\d+)", cause)
                retried = status is not None and int(status.group(1)) in RETRY_ON_STATUS
            else:
                root = _root_cause(exc)
                cause = f"{type(root).__name__}: {root}"
                retried = True
            tried = f"tried {RETRIES + 1} times in {took}" if retried else f"in {took}"
            raise PrometheusError(f"{self.url}: {what}: {cause} ({tried})") from exc

    async def instant(self, query: str, at: float | None = None) -> list[Sample]:
        """The query's vector at `at` (Unix seconds; now when None)."""
        params = {"time": f"{at:.3f}"} if at is not None else None
        result = await self._run(
            f"query {query!r}", partial(self._client.custom_query, query, params=params)
        )
        samples = []
        for item in result or []:
            if "value" in item:
                ts, raw = item["value"]
                samples.append(Sample(dict(item.get("metric", {})), _value(raw), float(ts)))
        return samples

    async def range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        """The query's matrix between `start` and `end`."""
        call = partial(
            self._client.custom_query_range,
            query,
            start_time=datetime.fromtimestamp(start, UTC),
            end_time=datetime.fromtimestamp(max(end, start + step), UTC),
            step=format_duration(step),
        )
        result = await self._run(f"query_range {query!r}", call)
        return [
            Series(
                dict(item.get("metric", {})),
                [(float(t), _value(v)) for t, v in item.get("values", [])],
            )
            for item in result or []
        ]

    async def raw_samples(self, selector: str, start: float, end: float) -> list[Series]:
        """The samples `selector` stored between `start` and `end`, at their own timestamps
        (a range-vector selector, so no lookback fills gaps or extends a series past its end); a
        series with no sample from `start` on is left out."""
        seconds = max(1, math.ceil(end - start))
        query = f"{selector}[{seconds}s]"
        result = await self._run(
            f"query {query!r}",
            partial(self._client.custom_query, query, params={"time": f"{end:.3f}"}),
        )
        stored = [
            Series(
                dict(item.get("metric", {})),
                [(float(t), _value(v)) for t, v in item.get("values", []) if float(t) >= start],
            )
            for item in result or []
        ]
        return [s for s in stored if s.points]

    async def _get(self, path: str) -> Any:
        url = f"{self.url}{path}"
        try:
            async with async_client(self.timeout) as client:
                response = await client.get(url)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise PrometheusError(f"GET {url}: {type(exc).__name__}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"GET {url}: {body.get('error', body)}")
        return body["data"]

    async def intervals(self) -> tuple[float, float]:
        """(scrape_interval, evaluation_interval) in seconds, from the configuration Prometheus
        is running (`/api/v1/status/config`), not from what a target file claims."""
        text = (await self._get("/api/v1/status/config")).get("yaml", "")
        try:
            config = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise PrometheusError(f"{self.url}/api/v1/status/config: not YAML: {exc}") from exc
        glob = config.get("global", {})
        scrape = parse_duration(str(glob.get("scrape_interval", "1m")))
        evaluation = parse_duration(str(glob.get("evaluation_interval", "1m")))
        return scrape, evaluation

    async def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing), as `/api/v1/alerts` lists them."""
        return (await self._get("/api/v1/alerts")).get("alerts", [])

    async def rule_groups(self) -> list[dict[str, Any]]:
        """Loaded rule groups with their interval, rules, `duration` (for:) and query."""
        return (await self._get("/api/v1/rules")).get("groups", [])

    async def alerting_rule(self, name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(rule, its group) for alert `name`, as Prometheus loaded it."""
        for group in await self.rule_groups():
            for rule in group.get("rules", []):
                if rule.get("type") == "alerting" and rule.get("name") == name:
                    return rule, group
        return None


def total(samples: list[Sample]) -> float | None:
    """Sum of a vector's values; None for an empty vector (no data is not zero)."""
    values = [s.value for s in samples if not math.isnan(s.value)]
    return sum(values) if values else None
