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
from rich.console import Console
from rich.table import Table

from harness.durations import parse_duration
from harness.report.claimed import ClaimedMatrixError, Disagreement, compare, parse_claimed
from harness.report.coverage import COLUMNS, INVERSE_TITLES, Coverage, compute_coverage
from harness.report.inventory import Inventory, load_inventory
from harness.report.pdf import PdfError
from harness.report.runs import RunDirProblem, load_runs
from harness.yamlfile import FileProblems

console = Console()
err = Console(stderr=True, soft_wrap=True)

RunDirs = Annotated[list[Path], typer.Argument(help="run directories (each with evidence.json)")]
StaleAfter = Annotated[
    str, typer.Option("--stale-after", help="a verified cell goes stale after this age")
]
COLOURS = {"covered": "green", "partial": "yellow", "none": "dim", "stale": "magenta"}


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
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
    age = _stale_after(stale_after)
    try:
        written = write_report(
            run_dirs, target, pdf=False, inventory=_inventory(), stale_after_s=age
        )
    except RunDirProblem as exc:
        raise _fail(str(exc)) from None
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
            cells.append(f"[{COLOURS[cell.status]}]{cell.status}[/]{count}")
        table.add_row(name, row.verdict, *cells)
    return table


def _disagreements_table(found: list[Disagreement], source: Path) -> Table:
    table = Table(
        title=f"claimed ({source}) vs observed: {len(found)} disagreement(s)", title_justify="left"
    )
    for column in ("line", "scenario", "column", "claimed", "observed", "which way", "evidence"):
        table.add_column(column, overflow="fold")
    for d in found:
        table.add_row(
            str(d.line), d.scenario_id, d.column, d.claimed, d.observed, d.direction, d.detail
        )
    return table


def coverage(
    run_dirs: RunDirs,
    claimed: Annotated[
        Path | None,
        typer.Option("--claimed", help="a hand-maintained coverage matrix (Markdown) to check"),
    ] = None,
    stale_after: StaleAfter = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """The coverage matrix computed from the runs' evidence (and against a --claimed one)."""
    age = _stale_after(stale_after)
    inventory = _inventory()
    try:
        runs = load_runs(run_dirs)
    except RunDirProblem as exc:
        raise _fail(str(exc)) from None
    matrix = compute_coverage(runs, inventory, stale_after_s=age)
    found: list[Disagreement] | None = None
    if claimed is not None:
        try:
            text = claimed.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"{claimed}: cannot be read ({exc})") from None
        try:
            claims = parse_claimed(text, str(claimed), inventory.known_ids())
        except ClaimedMatrixError as exc:
            raise _fail(f"the claimed matrix cannot be read:\n{exc}") from None
        found = compare(claims, matrix)
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
            console.print(
                f"[bold]{title}[/] ({len(gaps)}): " + (", ".join(g.item for g in gaps) or "none"),
                highlight=False,
            )
        if found is not None and claimed is not None:
            console.print(_disagreements_table(found, claimed))
    if found:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `report` and `coverage` to the `harness` command."""
    app.command("report")(report)
    app.command("coverage")(coverage)
