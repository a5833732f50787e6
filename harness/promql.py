"""Metric names a PromQL expression reads, so scenarios, rules and dashboards can be cross-checked
against the router's metric contract without a Prometheus server."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

_AGGREGATORS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([^"]+)"')


def _skip_string(expr: str, i: int) -> int:
    quote = expr[i]
    i += 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" and quote != "`" else 1
    return i + 1


def _skip_group(expr: str, i: int, open_: str, close: str) -> tuple[int, str]:
    """Index after the bracket group starting at `i`, and its text (strings kept intact)."""
    depth, start = 0, i
    while i < len(expr):
        ch = expr[i]
        if ch in "\"'`":
            i = _skip_string(expr, i)
            continue
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i + 1, expr[start : i + 1]
        i += 1
    return i, expr[start:]


def metric_names(expr: str) -> set[str]:
    """Every metric name selected in `expr` (histogram suffixes kept as written)."""
    names: set[str] = set()
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch in "\"'`":
            i = _skip_string(expr, i)
        elif ch == "{":
            i, block = _skip_group(expr, i, "{", "}")
            names.update(_NAME_MATCHER.findall(block))
        elif ch == "[":
            i, _ = _skip_group(expr, i, "[", "]")
        elif ch == "$":  # Grafana variable
            match = _IDENT.match(expr, i + 1)
            i = match.end() if match else i + 1
        elif ch.isdigit() or (ch == "." and i + 1 < len(expr) and expr[i + 1].isdigit()):
            match = re.compile(r"[0-9.eE+\-xXa-fA-F]+[a-z]*").match(expr, i)
            i = match.end() if match else i + 1
        elif _IDENT.match(expr, i):
            match = _IDENT.match(expr, i)
            assert match is not None
            word, i = match.group(0), match.end()
            rest = expr[i:].lstrip()
            if word in _LABEL_LISTS:
                if rest.startswith("("):
                    i, _ = _skip_group(expr, expr.index("(", i), "(", ")")
            elif word.lower() in _KEYWORDS or word in _AGGREGATORS or rest.startswith("("):
                continue
            else:
                names.add(word)
        else:
            i += 1
    return names


def base_metric(name: str, histograms: set[str]) -> str:
    """`x_bucket`/`x_sum`/`x_count` → `x` when `x` is a histogram of the contract."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in histograms:
            return name.removesuffix(suffix)
    return name


_OUTER_BY = re.compile(r"^\s*(?P<agg>[a-z_]+)\s*(?:by\s*\((?P<pre>[^)]*)\)\s*)?\(", re.IGNORECASE)


def kept_labels(expr: str) -> set[str] | None:
    """The label names the outermost aggregation of `expr` keeps (`sum by (a, b) (...)` →
    {a, b}; a plain `sum(...)` → empty); None when there is none (every label survives) or it
    cannot tell (`without`)."""
    match = _OUTER_BY.match(expr)
    if not match or match.group("agg") not in _AGGREGATORS:
        return None
    if match.group("pre") is not None:
        return {p.strip() for p in match.group("pre").split(",") if p.strip()}
    end, _ = _skip_group(expr, match.end() - 1, "(", ")")
    rest = expr[end:].lstrip()
    after = re.match(r"(by|without)\s*\(([^)]*)\)", rest)
    if after is None:
        return set() if not rest else None
    if after.group(1) == "without":
        return None
    return {p.strip() for p in after.group(2).split(",") if p.strip()}


_COMPARISON = re.compile(
    r"(>=|<=|==|!=|>|<)\s*(?:bool\s+)?([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


def threshold(expr: str) -> tuple[str, float] | None:
    """The outermost `expr OP number` comparison of an alert expression (`... > 0.05` →
    ('>', 0.05)); None when the expression does not end in one (it compares two series, or a
    set operator such as `or` is outermost)."""
    flat, i = [], 0
    while i < len(expr):  # blank out every bracket group and string: only the top level stays
        ch = expr[i]
        if ch in "\"'`":
            end = _skip_string(expr, i)
        elif ch in "([{":
            end, _ = _skip_group(expr, i, ch, {"(": ")", "[": "]", "{": "}"}[ch])
        else:
            flat.append(ch)
            i += 1
            continue
        flat.append(" ")
        i = end
    top = "".join(flat)
    if re.search(r"\b(?:and|or|unless)\b", top):  # set operators bind looser than comparisons
        return None
    match = _COMPARISON.search(top)
    return (match.group(1), float(match.group(2))) if match else None


_PROMTOOL_ERROR = re.compile(r'rule (\d+), "q\d+": could not parse expression: (?:\d+:\d+: )?(.*)$')
_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


def syntax_errors(exprs: list[str]) -> dict[int, str]:
    """Index → why, for each expression that is not valid PromQL (`$window` and Grafana-style
    variables stand for a range). Parsed by `promtool` when it is installed (one call for all),
    else only brackets and quotes are checked."""
    concrete = [_VARIABLE.sub("5m", e) for e in exprs]
    found = {i: why for i, e in enumerate(concrete) if (why := _unbalanced(e))}
    promtool = shutil.which("promtool")
    if promtool is None or not concrete:
        return found
    rules = {"groups": [{"name": "q", "rules": [
        {"record": f"q{i}", "expr": e} for i, e in enumerate(concrete)
    ]}]}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "queries.yml"
        path.write_text(yaml.safe_dump(rules))
        try:
            done = subprocess.run(
                [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return found
    for line in (done.stdout + done.stderr).splitlines():
        match = _PROMTOOL_ERROR.search(line)
        if match:
            found.setdefault(int(match.group(1)) - 1, match.group(2).removeprefix("parse error: "))
    return found


def _unbalanced(expr: str) -> str | None:
    """Why the brackets or quotes of `expr` do not pair up, or None."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch in "\"'`":
            end = _skip_string(expr, i)
            if end > len(expr):
                return f"unterminated string starting at column {i + 1}"
            i = end
            continue
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return f"unexpected {ch!r} at column {i + 1}"
        i += 1
    return f"unclosed {stack[-1]!r}" if stack else None
