"""`harness report`: run directories in, report.html, report.md (+ plots/), coverage.json and
optionally report.pdf out."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness.report.coverage import DEFAULT_STALE_AFTER_S
from harness.report.figures import ScenarioFigures
from harness.report.html import write_html
from harness.report.inventory import Inventory, load_inventory
from harness.report.markdown import write_markdown
from harness.report.model import Report, build_report
from harness.report.pdf import print_pdf
from harness.report.plots import scenario_svgs
from harness.report.runs import load_runs

PARALLEL_FROM = 6
"""Scenarios from which the plots are drawn in worker processes (matplotlib is the cost)."""


@dataclass
class Written:
    html: Path
    markdown: Path
    coverage: Path
    pdf: Path | None
    seconds: float


def _draw(job: tuple[ScenarioFigures, str]) -> dict[str, object]:
    return scenario_svgs(*job)


def draw_plots(report: Report, workers: int | None = None) -> None:
    """Fill every section's SVGs; in a few processes when the report is large."""
    jobs = [(s.figures, s.anchor) for s in report.sections]
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if workers > 1 and len(jobs) >= PARALLEL_FROM:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            drawn = list(pool.map(_draw, jobs))
    else:
        drawn = [_draw(job) for job in jobs]
    for section, svgs in zip(report.sections, drawn, strict=True):
        section.svgs = svgs


def write_coverage(report: Report, out_dir: Path) -> Path:
    path = out_dir / "coverage.json"
    path.write_text(json.dumps(report.coverage.document(), indent=1, default=str) + "\n")
    return path


def write_report(
    run_dirs: list[Path],
    out_dir: Path,
    *,
    pdf: bool = False,
    inventory: Inventory | None = None,
    now: float | None = None,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
    workers: int | None = None,
) -> Written:
    """Every file of the report of `run_dirs` into `out_dir`."""
    started = time.perf_counter()
    runs = load_runs(run_dirs)
    report = build_report(runs, inventory or load_inventory(), now=now, stale_after_s=stale_after_s)
    draw_plots(report, workers)
    out_dir.mkdir(parents=True, exist_ok=True)
    html = write_html(report, out_dir)
    markdown = write_markdown(report, out_dir)
    coverage = write_coverage(report, out_dir)
    printed = print_pdf(html, out_dir / "report.pdf") if pdf else None
    return Written(html, markdown, coverage, printed, time.perf_counter() - started)
