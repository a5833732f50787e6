"""report.html: one self-contained file (CSS inline, plots as inline SVG, no script, a
Content-Security-Policy that forbids every fetch) so it opens offline and prints cleanly."""

from __future__ import annotations

from pathlib import Path

from harness.report.model import Report
from harness.report.templating import environment


def render_html(report: Report) -> str:
    """The page; each section's `svgs` must be filled in first."""
    return environment("html").get_template("report.html.j2").render(report=report)


def write_html(report: Report, out_dir: Path) -> Path:
    path = out_dir / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path
