"""report.md: the verdicts, the matrix and the failures in Markdown for a pull request or an
audit ticket; the plots are SVG files in `plots/` beside it, linked from the text."""

from __future__ import annotations

from pathlib import Path

from harness.report.model import Report, ScenarioSection
from harness.report.templating import environment

PLOTS_DIR = "plots"


def write_plots(section: ScenarioSection, out_dir: Path) -> dict[str, object]:
    """The section's SVGs as files; their paths relative to `out_dir`."""
    folder = out_dir / PLOTS_DIR
    folder.mkdir(parents=True, exist_ok=True)

    def save(name: str, svg: str) -> str:
        path = folder / f"{section.anchor}-{name}.svg"
        path.write_text(svg, encoding="utf-8")
        return f"{PLOTS_DIR}/{path.name}"

    svgs = section.svgs
    return {
        "timeline": save("timeline", svgs["timeline"]),
        "metrics": [save(f"metric-{i + 1}", svg) for i, svg in enumerate(svgs["metrics"])],
        "alerts": save("alerts", svgs["alerts"]) if svgs.get("alerts") else None,
        "panels": [save(f"panel-{i + 1}", svg) for i, svg in enumerate(svgs["panels"])],
    }


def render_markdown(report: Report) -> str:
    """The document; each section's `plots` must be filled in first."""
    return environment("md").get_template("report.md.j2").render(report=report)


def write_markdown(report: Report, out_dir: Path) -> Path:
    for section in report.sections:
        section.plots = write_plots(section, out_dir)
    path = out_dir / "report.md"
    path.write_text(render_markdown(report), encoding="utf-8")
    return path
