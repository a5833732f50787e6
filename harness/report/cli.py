"""`harness report` and `harness coverage`: the evidence made readable, and the coverage matrix
computed from it (optionally against a hand-maintained one).

Exit codes: 0 done; 1 `coverage --claimed` found disagreements (or the PDF could not be
printed); 2 an input could not be read (a run directory, the inventory, the claimed matrix, a
duration) — always with a message naming the file and line, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from harness.durations import parse_duration
from harness.output import cell, console, error, say
from harness.output import cell as cell_text
from harness.paths import output_dir_problem
from harness.report.claimed import (
    Claim,
    ClaimedMatrixError,
    Disagreement,
    compare,
    parse_claimed,
)
from harness.report.coverage import COLUMNS, INVERSE_TITLES, Coverage, compute_coverage
from harness.report.inventory import Inventory, load_inventory
from harness.report.pdf import PdfError
from harness.report.runs import RunDirProblem, load_runs
from harness.yamlfile import FileProblems, read_text

RunDirs = Annotated[list[Path], typer.Argument(help="run directories (each with evidence.json)")]
OptionalRunDirs = Annotated[
    list[Path] | None,
    typer.Argument(help="run directories (each with evidence.json); none with --claimed alone"),
]
StaleAfter = Annotated[
    str, typer.Option("--stale-after", help="a verified cell goes stale after this age")
]
COLOURS = {"covered": "green", "partial": "yellow", "none": "dim", "stale": "magenta"}


def _fail(message: str, code: int = 2) -> typer.Exit:
    error(message)
    return typer.Exit(code)


def _stale_after(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise _fail(f"--stale-after: {exc}") from None


def _inventory() -> Inventory:
    try:
        return load_inventory()
    except FileProblems as exc:
        raise _fail(f"the scenario catalogue cannot be read:\n{exc}") from None


def report(
    run_dirs: RunDirs,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="output directory (default: the run directory; ./report for several)"
        ),
    ] = None,
    pdf: Annotated[
        bool, typer.Option("--pdf", help="also print report.pdf (headless Chromium)")
    ] = False,
    stale_after: StaleAfter = "30d",
) -> None:
    """Write report.html, report.md (+ plots/), coverage.json (and report.pdf) for runs."""
    from harness.report.build import write_report  # matplotlib loads only when needed

    target = out or (run_dirs[0] if len(run_dirs) == 1 and run_dirs[0].is_dir() else Path("report"))
    problem = output_dir_problem(target)
    if problem:
        raise _fail(f"--out: {problem}")
    age = _stale_after(stale_after)
    try:
        written = write_report(
            run_dirs, target, pdf=False, inventory=_inventory(), stale_after_s=age
        )
    except RunDirProblem as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(
            f"--out: cannot write the report into {target}: {exc.strerror or exc}"
        ) from None
    print(f"report: {written.html}")
    print(f"report: {written.markdown}")
    print(f"coverage: {written.coverage}")
    if pdf:
        from harness.report.pdf import print_pdf

        try:
            printed = print_pdf(written.html, target / "report.pdf")
        except PdfError as exc:
            raise _fail(str(exc), 1) from None
        print(f"report: {printed}")


def _matrix_table(coverage: Coverage) -> Table:
    table = Table(title="coverage (computed from the evidence)", title_justify="left")
    table.add_column("scenario", no_wrap=True)
    table.add_column("verdict")
    for column in COLUMNS:
        table.add_column(column)
    for row in coverage.rows:
        name = row.scenario_id + (f" ({', '.join(row.aliases)})" if row.aliases else "")
        cells = []
        for column in COLUMNS:
            cell = row.cells[column]
            passed = sum(e.status == "pass" for e in cell.elements)
            count = f" {passed}/{len(cell.elements)}" if cell.elements else ""
            cells.append(cell_text(f"{cell.status}{count}", COLOURS[cell.status]))
        table.add_row(cell_text(name), cell_text(row.verdict), *cells)
    return table


def _disagreements_table(found: list[Disagreement], source: Path) -> Table:
    table = Table(
        title=cell(f"claimed ({source}) vs observed: {len(found)} disagreement(s)"),
        title_justify="left",
    )
    for column in ("line", "scenario", "column", "claimed", "observed", "which way", "evidence"):
        table.add_column(column, overflow="fold")
    for d in found:
        table.add_row(
            *map(cell, (d.line, d.scenario_id, d.column, d.claimed, d.observed, d.direction)),
            cell(d.detail),
        )
    return table


def coverage(
    run_dirs: OptionalRunDirs = None,
    claimed: Annotated[
        Path | None,
        typer.Option("--claimed", help="a hand-maintained coverage matrix (Markdown) to check"),
    ] = None,
    stale_after: StaleAfter = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """The coverage matrix computed from the runs' evidence (and against a --claimed one).
    With --claimed and no run directory: the claims, and what a run needs to check each."""
    age = _stale_after(stale_after)
    inventory = _inventory()
    claims = _claims(claimed, inventory) if claimed is not None else None
    if not run_dirs:
        if claims is None or claimed is None:
            raise _fail("name run directories, or --claimed FILE alone to list its claims")
        _show_claims(claims, claimed, as_json)
        return
    try:
        runs = load_runs(run_dirs)
    except RunDirProblem as exc:
        raise _fail(str(exc)) from None
    matrix = compute_coverage(runs, inventory, stale_after_s=age)
    found = compare(claims, matrix) if claims is not None else None
    if as_json:
        document: dict[str, Any] = matrix.document()
        if found is not None:
            document["claimed"] = {
                "file": str(claimed),
                "disagreements": [d.document() for d in found],
            }
        print(json.dumps(document, indent=1, default=str))
    else:
        console.print(_matrix_table(matrix))
        for key, title in INVERSE_TITLES.items():
            gaps = matrix.inverse[key]
            items = ", ".join(g.item for g in gaps) or "none"
            console.print(Text.assemble((title, "bold"), f" ({len(gaps)}): {items}"))
        if found is not None and claimed is not None:
            console.print(_disagreements_table(found, claimed))
    if found:
        raise typer.Exit(1)


def _claims(path: Path, inventory: Inventory) -> list[Claim]:
    try:
        text = read_text(path)
    except FileProblems as exc:
        raise _fail(str(exc)) from None
    try:
        return parse_claimed(text, str(path), inventory.known_ids())
    except ClaimedMatrixError as exc:
        for line in str(exc).splitlines():
            error(line)
        raise typer.Exit(2) from None


NEEDS = {
    "tests": "a run of it (every check is a JUnit case)",
    "metrics": "a run with its metric checks passing",
    "alerts": "a run with its alert checks passing (fire, stay silent, boundary)",
    "dashboards": "a run with its panel checks passing",
}


def _show_claims(claims: list[Claim], source: Path, as_json: bool) -> None:
    """The claims of a hand-kept matrix, and what a run needs to check each (no evidence yet)."""
    rows = [
        {
            "line": c.line,
            "scenario": c.scenario_id,
            "column": c.column,
            "claimed": c.claimed,
            "to check": f"`harness run {c.scenario_id}`: {NEEDS.get(c.column, 'a run of it')}",
        }
        for c in claims
    ]
    if as_json:
        print(json.dumps({"claimed": {"file": str(source), "claims": rows}}, indent=1))
        return
    table = Table(
        title=cell(f"claimed ({source}): {len(rows)} claim(s), none checked: no run given"),
        title_justify="left",
    )
    for column in ("line", "scenario", "column", "claimed", "to check"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(cell(v) for v in row.values()))
    console.print(table)
    scenarios = sorted({c.scenario_id for c in claims})
    say(
        f"to check every claim: `harness run {' '.join(scenarios)} --out DIR`, then "
        f"`harness coverage DIR --claimed {source}`"
    )


def register(app: typer.Typer) -> None:
    """Add `report` and `coverage` to the `harness` command."""
    app.command("report", short_help="write report.html, report.md, coverage.json for runs")(report)
    app.command("coverage", short_help="the coverage matrix from the evidence (and --claimed)")(
        coverage
    )
