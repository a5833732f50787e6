"""report.html, report.md (+ plots/) and coverage.json from recorded evidence, and the CLI."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from harness.cli import app
from harness.report.build import Written
from harness.report.runs import load_run


class Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained(written: Written) -> None:
    html = written.html.read_text()
    parser = Tags()
    parser.feed(html)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    for tag, attrs in parser.tags:
        for name in ("src", "href", "xlink:href", "action"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), f"<{tag} {name}={value}>"
    assert not re.search(r"url\((?!#)", html) and "@import" not in html  # url(#id): in-page
    assert "default-src 'none'" in html  # the browser itself refuses any fetch


def test_html_has_every_section_verdict_first_and_its_plots(
    written: Written, b1: Path, a2: Path
) -> None:
    html = written.html.read_text()
    sections = re.findall(r'<section class="scenario" id="([^"]+)" data-scenario="([^"]+)">', html)
    ids = [sid for _, sid in sections]
    assert ids == ["S1@above", "S1@below", "S2", "S3@above", "S3@below"]
    body = html.split('data-scenario="S3@below">', 1)[1].split("</section>", 1)[0]
    assert (
        body.index("badge v-failed") < body.index("<strong>Why</strong>") < body.index("<h3>Checks")
    )
    assert "notified 16.8s after the fault, objective 10.0s" in body
    for kind, count in (("timeline", 1), ("metric", 3), ("alerts", 1), ("panel", 3)):
        assert body.count(f'class="plot plot-{kind}"') == count, kind
    failures = body.split("Failing and erroring checks", 1)[1]
    assert "the loaded rule and what it produced" in failures
    assert "sum(rate(router_dlq_total[10s])) &gt; 0.1" in failures  # the raw query
    assert "alerts_series" in failures and "notifications" in failures  # and its raw result
    assert body.count("<pre>") >= 2
    latest = html.split('data-scenario="S1@above">', 1)[1].split("</section>", 1)[0]
    assert "20261201T101755-9526f6" in latest and "20261201T100940-852e8a" in latest  # history
    assert latest.index("badge v-passed") < latest.index("Why")
    assert "Coverage matrix (computed from the evidence)" in html
    assert (
        "Alert rules no scenario fired" in html and "Catalogue scenarios that did not run" in html
    )
    record = load_run(b1).record
    assert record.started_by in html and "time compression" in html
    assert all(f"{k} {v}" in html for k, v in record.tools.items())


def test_markdown_links_plot_files_and_carries_the_matrix(written: Written) -> None:
    md = written.markdown.read_text()
    links = re.findall(r"\]\((plots/[^)]+\.svg)\)", md)
    assert links and all((written.markdown.parent / link).is_file() for link in links)
    assert len(set(links)) == len(list((written.markdown.parent / "plots").glob("*.svg")))
    assert "threshold | ❌ failed | alert RouterJetStreamMaxDeliverExhausted fires" in md
    assert "## Coverage matrix (computed from the evidence)" in md
    assert re.search(r"\| \*\*S3@below\*\* \| failed \| ⚠️ partial 13/15", md)
    assert "#### fail: alert RouterDLQHighRate fires" in md
    assert "```json" in md
    svg = (written.markdown.parent / links[0]).read_text()
    assert svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg


def test_coverage_json_is_the_matrix(written: Written) -> None:
    document = json.loads(written.coverage.read_text())
    assert document["schema"] == "harness.coverage/v1"
    rows = {r["scenario_id"]: r for r in document["rows"]}
    assert rows["S3@below"]["cells"]["alerts"]["status"] == "partial"
    assert rows["S3@below"]["cells"]["alerts"]["run_id"] == "20261201T100940-852e8a"
    assert rows["S1@above"]["run_id"] == "20261201T101755-9526f6"
    assert set(document["inverse"]) == {
        "alerts_never_fired",
        "forbidden_never_proven_alive",
        "metrics_never_moved",
        "metrics_out_of_scope",
        "panels_never_showed_symptom",
        "scenarios_not_run",
    }


def test_cli_report_writes_beside_a_single_run_and_refuses_bad_dirs(
    a2: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "evidence.json").write_text((a2 / "evidence.json").read_text())
    runner = CliRunner()
    done = runner.invoke(app, ["report", str(run)])
    assert done.exit_code == 0, done.output
    assert f"report: {run / 'report.html'}" in done.output
    assert (run / "report.md").is_file() and (run / "coverage.json").is_file()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "evidence.json").write_text('{"schema": "x"}')
    done = runner.invoke(app, ["report", str(broken), "--out", str(tmp_path / "o")])
    assert done.exit_code == 2 and "not a run record of this harness" in done.output
    done = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert done.exit_code == 2 and "no evidence.json" in done.output
    assert "Traceback" not in done.output


def test_cli_coverage_json(b1: Path) -> None:
    done = CliRunner().invoke(app, ["coverage", str(b1), "--json", "--stale-after", "3650d"])
    assert done.exit_code == 0, done.output
    document = json.loads(done.output)
    assert document["stale_after_s"] == 3650 * 86400
    done = CliRunner().invoke(app, ["coverage", str(b1), "--stale-after", "soon"])
    assert done.exit_code == 2 and "invalid duration" in done.output
