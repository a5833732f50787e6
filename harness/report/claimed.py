"""Claimed vs observed: a hand-maintained coverage matrix (Markdown) against the live one.

The claimed matrix is the seed's format: Markdown tables whose first column is the scenario ID
(possibly bold, `**S1**`) and whose columns Tests, Metrics, Alerts and Dashboards carry ✅
(covered), ⚠️ (partial) or ❌ (none). Every cell where claim and evidence disagree is listed,
both ways. A file that cannot be read that way is refused with every problem and its line.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from harness.errors import HarnessError
from harness.report.coverage import COLUMNS, CellStatus, Coverage, Row, merge_status

SYMBOLS: dict[str, CellStatus] = {"✅": "covered", "⚠": "partial", "❌": "none"}
_RANK = {"none": 0, "partial": 1, "covered": 2}
_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_ID = re.compile(r"^(?:S\d+|[A-Z][A-Z0-9]*-\d{3})(?:@[a-z][a-z0-9-]*)?$")
_SCENARIO_HEADERS = {"scenario", "scenario id", "id"}


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class ClaimedMatrixError(HarnessError):
    """The claimed matrix cannot be read; `problems` says where and why."""

    def __init__(self, path: str, problems: list[Problem]):
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


@dataclass(frozen=True)
class Claim:
    scenario_id: str
    column: str
    claimed: CellStatus
    text: str
    line: int


@dataclass(frozen=True)
class Disagreement:
    """A cell where claim and evidence differ; `direction` says which way."""

    scenario_id: str
    column: str
    claimed: CellStatus
    observed: CellStatus
    direction: str  # overstated | understated | stale
    line: int
    detail: str

    def document(self) -> dict[str, Any]:
        return asdict(self)


def split_row(line: str) -> list[str]:
    """The cells of a Markdown table row (outer pipes optional, `\\|` kept as text)."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", body)]


def _plain(cell: str) -> str:
    return re.sub(r"[*_`]", "", cell).strip()


def _symbol(cell: str) -> CellStatus | None | str:
    found = {status for symbol, status in SYMBOLS.items() if symbol in cell}
    if len(found) > 1:
        return "several"
    return next(iter(found), None)


def _tables(lines: list[str]) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of each block of consecutive table-looking lines."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(lines, 1):
        if line.strip().startswith("|"):
            if not current:
                start = number
            current.append(line)
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return blocks


def parse_claimed(text: str, path: str = "<claimed>", known: set[str] | None = None) -> list[Claim]:
    """Every claim of every coverage table; raises ClaimedMatrixError with all problems."""
    problems: list[Problem] = []
    claims: list[Claim] = []
    seen: dict[str, int] = {}
    tables = 0
    for start, block in _tables(text.splitlines()):
        header = [_plain(c).lower() for c in split_row(block[0])]
        named = [c for c in COLUMNS if c in header]
        if header[0] not in _SCENARIO_HEADERS:
            if named:
                problems.append(
                    Problem(
                        start,
                        f"the table has column(s) {', '.join(named)} but its first "
                        f"column is {header[0]!r}, not the scenario ID",
                    )
                )
            continue
        tables += 1
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            problems.append(
                Problem(
                    start,
                    f"the table has no column(s) {', '.join(c.title() for c in missing)}"
                    f" (its columns: {', '.join(split_row(block[0]))})",
                )
            )
            continue
        if len(block) < 2 or not _SEPARATOR.match(block[1].strip()):
            problems.append(
                Problem(
                    start + 1,
                    "malformed table: the header is not followed by a separator row like |---|---|",
                )
            )
            continue
        index = {c: header.index(c) for c in COLUMNS}
        for offset, line in enumerate(block[2:], 2):
            number = start + offset
            cells = split_row(line)
            if len(cells) != len(header):
                problems.append(
                    Problem(
                        number, f"malformed row: {len(cells)} cells, the header has {len(header)}"
                    )
                )
                continue
            scenario = _plain(cells[0])
            if not _ID.match(scenario):
                problems.append(Problem(number, f"{cells[0]!r} is not a scenario ID"))
                continue
            if known is not None and scenario not in known:
                problems.append(
                    Problem(
                        number,
                        f"unknown scenario ID {scenario}: neither the catalogue, "
                        "its aliases, nor any rule or panel names it",
                    )
                )
                continue
            if scenario in seen:
                problems.append(
                    Problem(number, f"{scenario} is claimed twice (also line {seen[scenario]})")
                )
                continue
            seen[scenario] = number
            for column, i in index.items():
                status = _symbol(cells[i])
                if status is None or status == "several":
                    what = "none" if status is None else "more than one"
                    problems.append(
                        Problem(
                            number,
                            f"{scenario} {column.title()}: {cells[i]!r} has {what} of ✅ ⚠️ ❌",
                        )
                    )
                    continue
                claims.append(Claim(scenario, column, status, cells[i], number))  # type: ignore[arg-type]
    if not tables and not problems:
        problems.append(
            Problem(
                None,
                "no coverage table found: a Markdown table whose first column is "
                "Scenario, with columns Tests, Metrics, Alerts and Dashboards",
            )
        )
    if problems:
        raise ClaimedMatrixError(path, problems)
    return claims


def rows_for(coverage: Coverage, scenario_id: str) -> list[Row]:
    """The matrix rows a claimed ID stands for: itself, its variants, or scenarios it aliases."""
    exact = [r for r in coverage.rows if r.scenario_id == scenario_id]
    if exact and "@" in scenario_id:
        return exact
    return [
        r
        for r in coverage.rows
        if r.scenario_id == scenario_id or r.base_id == scenario_id or scenario_id in r.aliases
    ]


def compare(claims: list[Claim], coverage: Coverage) -> list[Disagreement]:
    """Every claimed cell the evidence does not bear out, and every one it outdoes."""
    out = []
    for claim in claims:
        rows = rows_for(coverage, claim.scenario_id)
        cells = [r.cells[claim.column] for r in rows]
        observed = merge_status([c.status for c in cells])
        if observed == claim.claimed:
            continue
        if observed == "stale":
            direction = "stale"
        elif _RANK[claim.claimed] > _RANK[observed]:
            direction = "overstated"
        else:
            direction = "understated"
        out.append(
            Disagreement(
                claim.scenario_id,
                claim.column,
                claim.claimed,
                observed,
                direction,
                claim.line,
                _detail(claim, rows),
            )
        )
    return out


def _detail(claim: Claim, rows: list[Row]) -> str:
    if not rows:
        return f"{claim.scenario_id} is not in the scenario catalogue: no run exercised it"
    parts = []
    for row in rows:
        cell = row.cells[claim.column]
        if row.run_id is None:
            parts.append(f"{row.scenario_id}: did not run")
            continue
        failing = cell.failing
        text = f"{row.scenario_id}: {cell.status} in run {cell.run_id}"
        if failing:
            text += " (" + "; ".join(f"{e.name}: {e.status}" for e in failing[:3]) + ")"
        elif not cell.elements:
            text += " (nothing checked)"
        parts.append(text)
    return "; ".join(parts)
