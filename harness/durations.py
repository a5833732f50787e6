"""Prometheus-style durations (`90s`, `1h30m`, `500ms`): parse to seconds and format back.

One parser for every duration the harness reads (rule files, scenarios, profiles), so a
duration means the same thing everywhere.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS_MS = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}
_ORDER = ["y", "w", "d", "h", "m", "s", "ms"]
_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
DURATION_PATTERN = r"(?:\d+(?:ms|y|w|d|h|m|s))+"
_WHOLE = re.compile(rf"^{DURATION_PATTERN}$")


def parse_duration_ms(text: str) -> int:
    """Milliseconds in a Prometheus duration; units must appear largest first, each once."""
    text = text.strip()
    if not text or not _WHOLE.match(text):
        raise ValueError(f"invalid duration {text!r}: expected e.g. 30s, 5m, 1h30m, 500ms")
    total = 0
    last_index = -1
    for number, unit in _PART.findall(text):
        index = _ORDER.index(unit)
        if index <= last_index:
            raise ValueError(f"invalid duration {text!r}: units must go from largest to smallest")
        last_index = index
        total += int(number) * _UNITS_MS[unit]
    return total


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration."""
    return parse_duration_ms(text) / 1000.0


def format_duration_ms(ms: int) -> str:
    """The shortest Prometheus duration for `ms` milliseconds (`0s` for zero)."""
    if ms < 0:
        raise ValueError(f"negative duration: {ms} ms")
    if ms == 0:
        return "0s"
    parts = []
    for unit in ["h", "m", "s", "ms"]:  # stop at hours: 36h reads better than 1d12h
        size = _UNITS_MS[unit]
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for `seconds`, rounded to the millisecond."""
    return format_duration_ms(round(seconds * 1000))


MAX_DURATION_S = 7 * 24 * 3600.0
"""The longest duration a file may give (one week of production time): a fault, a timeout or
an objective beyond it is a typo (`100000h`), and would hold a target for months."""


def _coerce(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a duration string such as 30s, not a boolean")
    if isinstance(value, int | float):
        raise ValueError(f"must be a duration string with a unit, such as {value}s")
    if isinstance(value, str):
        seconds = parse_duration(value)
        if seconds > MAX_DURATION_S:
            raise ValueError(f"{value!r} is longer than a week (7d), the most a duration may be")
        return seconds
    raise ValueError("must be a duration string such as 30s")


Duration = Annotated[
    float,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
]
"""A pydantic field type: written as `30s` in files, held as seconds in code."""
