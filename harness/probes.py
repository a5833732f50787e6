"""Health probes for each endpoint of a target; each failure says which URL and what it tried.

The local stack's readiness checks and `harness status --target` use the same probes, so
"up" means the same thing for a stack we started and one we were pointed at.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import anyio
import httpx
import nats
from nats.errors import Error as NatsError
from prometheus_client.parser import text_string_to_metric_families

from harness.errors import HarnessError


class ProbeFailed(HarnessError):
    """The endpoint did not give the answer that proves it healthy."""


@dataclass
class ProbeResult:
    """One endpoint's health, as shown by `harness status`."""

    name: str
    url: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    kind = type(exc).__name__
    return f"{kind}: {text}" if text else kind


async def _get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    try:
        return await client.get(url)
    except httpx.HTTPError as exc:
        raise ProbeFailed(f"GET {url}: {_describe(exc)}") from exc


async def _get_ok(client: httpx.AsyncClient, url: str) -> httpx.Response:
    response = await _get(client, url)
    if response.status_code != 200:
        raise ProbeFailed(f"GET {url}: HTTP {response.status_code} {response.text[:200]!r}")
    return response


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError as exc:
        raise ProbeFailed(f"GET {response.request.url}: not JSON: {response.text[:200]!r}") from exc


async def probe_nats(url: str, timeout: float = 3.0) -> str:
    """Connect and ask JetStream for the account info: proves NATS and JetStream both answer."""

    async def quiet(_: Exception) -> None:
        return None

    nc = None
    try:
        with anyio.fail_after(timeout):
            nc = await nats.connect(
                url,
                connect_timeout=timeout,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                error_cb=quiet,
                name="harness-probe",
            )
            info = await nc.jetstream(timeout=timeout).account_info()
    except TimeoutError as exc:
        raise ProbeFailed(f"NATS {url}: no JetStream account info within {timeout:g}s") from exc
    except (OSError, NatsError) as exc:
        raise ProbeFailed(f"NATS {url}: JetStream account info failed: {_describe(exc)}") from exc
    finally:
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()
    return f"JetStream ok: {info.streams} streams, {info.consumers} consumers"


async def probe_prometheus(
    client: httpx.AsyncClient, url: str, *, require_targets_up: bool = True
) -> str:
    """`/-/ready`, then every active scrape target reporting `up`."""
    await _get_ok(client, f"{url}/-/ready")
    if not require_targets_up:
        return "ready"
    body = _json(await _get_ok(client, f"{url}/api/v1/targets?state=active"))
    targets = body.get("data", {}).get("activeTargets", []) if isinstance(body, dict) else []
    if not targets:
        raise ProbeFailed(f"GET {url}/api/v1/targets: no active scrape targets")
    down = [
        f"{t.get('labels', {}).get('job')}@{t.get('scrapeUrl')}={t.get('health')}"
        f"{(' (' + t['lastError'] + ')') if t.get('lastError') else ''}"
        for t in targets
        if t.get("health") != "up"
    ]
    if down:
        raise ProbeFailed(f"GET {url}/api/v1/targets: targets not up: {', '.join(down)}")
    return f"ready, {len(targets)} scrape targets up"


async def probe_alertmanager(client: httpx.AsyncClient, url: str) -> str:
    """`/-/ready` and the v2 status API (the API the checks use later)."""
    await _get_ok(client, f"{url}/-/ready")
    status = _json(await _get_ok(client, f"{url}/api/v2/status"))
    version = status.get("versionInfo", {}).get("version", "?") if isinstance(status, dict) else "?"
    return f"ready, version {version}"


async def probe_toxiproxy(
    client: httpx.AsyncClient, url: str, proxies: list[str] | None = None
) -> str:
    """`/version`, then each named proxy exists (a missing one is a failure)."""
    version = _json(await _get_ok(client, f"{url}/version"))
    listed = _json(await _get_ok(client, f"{url}/proxies"))
    names = set(listed) if isinstance(listed, dict) else set()
    missing = [p for p in proxies or [] if p not in names]
    if missing:
        raise ProbeFailed(f"GET {url}/proxies: proxies missing: {', '.join(missing)}")
    disabled = [p for p in proxies or [] if not listed[p].get("enabled", True)]
    detail = f"version {version.get('version') if isinstance(version, dict) else version}"
    detail += f", {len(names)} proxies"
    if disabled:
        detail += f" (disabled: {', '.join(disabled)})"
    return detail


def _sample(text: str, name: str) -> float | None:
    """The value of metric `name` (its first sample) in an exposition, if present."""
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
    except ValueError:
        return None
    return None


async def probe_router(
    client: httpx.AsyncClient, metrics_url: str, ready_url: str | None = None
) -> str:
    """A router is ready when its documented metrics say so: connected to NATS
    (`router_nats_connection_status` 1) and bound to its consumer (`router_nats_subscribe_total`
    ≥ 1). A readiness URL is consulted too, but only when the target names one."""
    response = await _get_ok(client, metrics_url)
    status = _sample(response.text, "router_nats_connection_status")
    if status is None:
        raise ProbeFailed(f"GET {metrics_url}: no router_nats_connection_status sample")
    if status != 1:
        raise ProbeFailed(f"GET {metrics_url}: router_nats_connection_status is {status:g}, not 1")
    if not (_sample(response.text, "router_nats_subscribe_total") or 0) >= 1:
        raise ProbeFailed(f"GET {metrics_url}: the router has not bound to its consumer yet")
    detail = "connected and subscribed (per /metrics)"
    if ready_url:
        ready = await _get(client, ready_url)
        if ready.status_code != 200:
            raise ProbeFailed(f"GET {ready_url}: HTTP {ready.status_code} {ready.text[:200]}")
        detail += f"; {ready_url} 200"
    return detail


async def probe_webhook(client: httpx.AsyncClient, url: str) -> str:
    """The harness's notification receiver answering its health endpoint."""
    body = _json(await _get_ok(client, f"{url}/healthz"))
    count = body.get("notifications", "?") if isinstance(body, dict) else "?"
    return f"ready, {count} notifications recorded"


async def run_probe(
    name: str, url: str, probe: Callable[[], Awaitable[str]], timeout: float
) -> ProbeResult:
    """Run one probe with a deadline; never raises, the failure goes into the result."""
    try:
        with anyio.fail_after(timeout):
            return ProbeResult(name, url, True, await probe())
    except ProbeFailed as exc:
        return ProbeResult(name, url, False, str(exc))
    except TimeoutError:
        return ProbeResult(name, url, False, f"{url}: no answer within {timeout:g}s")
