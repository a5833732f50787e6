"""The Jinja2 environments and filters the HTML and Markdown writers share, so a time, a
duration or a number reads the same in both."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel

from harness.durations import format_duration
from harness.report.coverage import COLUMNS, INVERSE_TITLES
from harness.report.model import anchor

TEMPLATES = Path(__file__).parent


def utc(at: float | None) -> str:
    """A Unix time as UTC to the second, e.g. `2026-12-01 10:08:25Z`."""
    if at is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(at))


def dur(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds < 60:
        return f"{max(0.0, seconds):.1f}s"
    return format_duration(round(seconds))


def num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def compact(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "), default=str, ensure_ascii=False)
    return num(value) if value is not None else "–"


def mdcell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


@cache
def environment(kind: str) -> Environment:
    """`html` (autoescaped) or `md`."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html.j2"]) if kind == "html" else False,
        undefined=StrictUndefined,
        trim_blocks=kind == "md",
        lstrip_blocks=kind == "md",
        keep_trailing_newline=True,
    )
    env.filters.update(utc=utc, dur=dur, num=num, compact=compact, anchor=anchor, mdcell=mdcell)
    env.globals.update(columns=COLUMNS, inverse_titles=INVERSE_TITLES)
    return env
