"""The run summary posted to a chat webhook when a run ends (Slack-compatible JSON).

Posting is best effort: a webhook that is down or refuses is logged and recorded on the run,
and never changes the run's outcome.
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog

from harness.errors import describe
from harness.http import async_client

log = structlog.get_logger("service.notify")

ICONS = {"passed": "✅", "failed": "❌", "error": "⚠️", "interrupted": "⏹", "cancelled": "⏹"}


def summary(run: dict[str, Any], report_url: str | None) -> dict[str, Any]:
    """`{"text", "blocks"}`: verdict per scenario, the failures' reasons, the report link."""
    status = run["status"]
    results = run.get("results", [])
    head = f"{ICONS.get(status, '🛑')} harness run {run['id']}: {status}"
    if run.get("aborted_by"):
        a = run["aborted_by"]
        head += f" (aborted by guard {a.get('guard')})"
    if run.get("schedule"):
        head += f" · schedule {run['schedule']}"
    lines = [f"{ICONS.get(r['verdict'], '•')} {r['scenario_id']}: {r['verdict']}" for r in results]
    failures = [f"*{r['scenario_id']}*: {r['reason']}" for r in results if r["verdict"] != "passed"]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "\n".join(lines) or "no scenario finished"},
        },
    ]
    if failures:
        text = "\n".join(failures)[:2900]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if report_url:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{report_url}|report>"}}
        )
    text = head + (f"\n{report_url}" if report_url else "")
    return {"text": text, "blocks": blocks}


async def post_summary(
    url: str, run: dict[str, Any], report_url: str | None, timeout: float = 5.0
) -> str | None:
    """POST the summary; the error as text when it could not be delivered, else None."""
    try:
        async with async_client(timeout) as http:
            response = await http.post(url, json=summary(run, report_url))
        if response.status_code >= 300:
            error = f"webhook answered {response.status_code}: {response.text[:200]}"
        else:
            return None
    except httpx.HTTPError as exc:
        error = f"webhook not reached: {describe(exc)}"
    log.warning("notify_failed", run_id=run["id"], error=error)
    return error
