"""Time compression of Prometheus rule files, so a 10-minute alert fires in 20 seconds locally.

Every `for:`, `keep_firing_for:`, group `interval:` and every range-vector or subquery window
in `expr` is divided by the factor; everything else (names, labels, annotations, thresholds,
offsets) is left as written. A staging game-day uses factor 1 and the rules unchanged.
"""

from __future__ import annotations

import math
import re

import yaml

from harness.durations import DURATION_PATTERN, format_duration_ms, parse_duration_ms

_RANGE = re.compile(
    rf"\[\s*(?P<range>{DURATION_PATTERN})\s*(?::\s*(?P<step>{DURATION_PATTERN})?\s*)?\]"
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def compress_ms(ms: int, factor: float, floor_ms: int = 0) -> int:
    """`ms` divided by `factor`, at least `floor_ms` (never more than the original)."""
    if factor < 1:
        raise ValueError(f"time compression factor must be ≥ 1, got {factor}")
    scaled = max(1, math.ceil(ms / factor)) if ms > 0 else 0
    return min(ms, max(scaled, floor_ms))


def compress_duration(text: str, factor: float, floor_ms: int = 0) -> str:
    """A Prometheus duration divided by `factor` (`10m` at 30 → `20s`)."""
    return format_duration_ms(compress_ms(parse_duration_ms(text), factor, floor_ms))


def compress_promql(expr: str, factor: float, min_range_ms: int = 0) -> str:
    """Divide every `[range]` and `[range:step]` in `expr`, leaving string literals alone."""

    def windows(segment: str) -> str:
        def repl(match: re.Match[str]) -> str:
            rng = compress_duration(match["range"], factor, min_range_ms)
            if match.group(0).find(":") < 0:
                return f"[{rng}]"
            step = match["step"]
            return f"[{rng}:{compress_duration(step, factor) if step else ''}]"

        return _RANGE.sub(repl, segment)

    out, pos = [], 0
    for literal in _STRING.finditer(expr):
        out.append(windows(expr[pos : literal.start()]))
        out.append(literal.group(0))
        pos = literal.end()
    out.append(windows(expr[pos:]))
    return "".join(out)


def longest_range_s(expr: str) -> float:
    """The longest `[range]` in `expr` in seconds (0 when it has none), string literals aside."""
    ranges = [parse_duration_ms(m["range"]) for m in _RANGE.finditer(_STRING.sub('""', expr))]
    return max(ranges, default=0) / 1000.0


def compress_rule_groups(doc: dict, factor: float, min_range_ms: int = 0) -> dict:
    """A compressed copy of a parsed rule file (`{"groups": [...]}`)."""
    groups = []
    for group in doc.get("groups") or []:
        group = dict(group)
        if "interval" in group:
            group["interval"] = compress_duration(str(group["interval"]), factor)
        rules = []
        for rule in group.get("rules") or []:
            rule = dict(rule)
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    rule[key] = compress_duration(str(rule[key]), factor)
            if "expr" in rule:
                rule["expr"] = compress_promql(str(rule["expr"]), factor, min_range_ms)
            rules.append(rule)
        group["rules"] = rules
        groups.append(group)
    return {**doc, "groups": groups}


def compress_rule_file(text: str, factor: float, min_range_ms: int = 0) -> str:
    """Render a rule file's text compressed by `factor`; factor 1 returns it unchanged."""
    if factor == 1:
        return text
    doc = yaml.safe_load(text) or {}
    header = f"# Rendered by harness with time compression ×{factor:g}; do not edit.\n"
    return header + yaml.safe_dump(
        compress_rule_groups(doc, factor, min_range_ms), sort_keys=False, width=1000
    )
