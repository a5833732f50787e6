"""Claimed vs observed: the seed's Markdown matrix parsed, compared both ways, and refused
with the line when it cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.report.claimed import ClaimedMatrixError, compare, parse_claimed, split_row
from harness.report.coverage import compute_coverage
from harness.report.runs import load_runs
from tests.report.conftest import T0, check, scenario
from tests.report.test_coverage import small_catalogue

SEED = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "seed"
    / "jetstream-obs-formalization-report.md"
)
HEADER = (
    "| Scenario | Tests | Metrics | Alerts | Dashboards | Status |\n|---|---|---|---|---|---|\n"
)
KNOWN = {"S1", "S2", "S9", "NATS-004"}


def problems(text: str, known: set[str] | None = KNOWN) -> list[str]:
    with pytest.raises(ClaimedMatrixError) as caught:
        parse_claimed(text, "claimed.md", known)
    return [str(p) for p in caught.value.problems]


def test_rows_split_on_unescaped_pipes() -> None:
    assert split_row("| **S1** | ✅ a \\| b | x |") == ["**S1**", "✅ a | b", "x"]
    assert split_row("S1 | ✅ ") == ["S1", "✅"]


def test_the_seed_parses() -> None:
    if not SEED.is_file():
        pytest.skip(f"no seed at {SEED}")
    claims = parse_claimed(SEED.read_text(), str(SEED))
    by_cell = {(c.scenario_id, c.column): c for c in claims}
    assert len(claims) == 16 * 4
    assert by_cell[("S1", "alerts")].claimed == "partial"
    assert by_cell[("S1", "alerts")].line == 96
    assert by_cell[("S2", "tests")].claimed == "covered"
    assert by_cell[("NATS-005", "alerts")].claimed == "none"


def test_bold_ids_symbols_and_other_tables() -> None:
    text = (
        "| Name | Value |\n|---|---|\n| x | y |\n\n"
        + HEADER
        + "| **S1** | ✅ 2 tests | ⚠️ partial | ❌ None | ⚠ | **Covered** |\n"
    )
    claims = parse_claimed(text, known=KNOWN)
    assert [(c.column, c.claimed, c.line) for c in claims] == [
        ("tests", "covered", 7),
        ("metrics", "partial", 7),
        ("alerts", "none", 7),
        ("dashboards", "partial", 7),
    ]


def test_missing_columns_name_the_line() -> None:
    text = "intro\n\n| Scenario | Tests | Metrics |\n|---|---|---|\n| S1 | ✅ | ✅ |\n"
    assert problems(text) == [
        "line 3: the table has no column(s) Alerts, Dashboards "
        "(its columns: Scenario, Tests, Metrics)"
    ]


def test_malformed_tables_and_rows() -> None:
    no_separator = (
        "| Scenario | Tests | Metrics | Alerts | Dashboards |\n| S1 | ✅ | ✅ | ✅ | ✅ |\n"
    )
    assert "line 2: malformed table" in problems(no_separator)[0]
    rows = (
        HEADER
        + "| S1 | ✅ | ✅ |\n| S2 | ✅ | ✅ | maybe | ✅ | x |\n| S9 | ✅ | ✅ | ✅ ❌ | ✅ | x |\n"
    )
    assert problems(rows) == [
        "line 3: malformed row: 3 cells, the header has 6",
        "line 4: S2 Alerts: 'maybe' has none of ✅ ⚠️ ❌",
        "line 5: S9 Alerts: '✅ ❌' has more than one of ✅ ⚠️ ❌",
    ]
    wrong_first = "| Name | Tests | Metrics | Alerts | Dashboards |\n|---|---|---|---|---|\n"
    assert "first column is 'name', not the scenario ID" in problems(wrong_first)[0]
    assert problems("no table here\n") == [
        "no coverage table found: a Markdown table whose first column is Scenario, with columns "
        "Tests, Metrics, Alerts and Dashboards"
    ]


def test_unknown_and_duplicate_ids() -> None:
    text = HEADER + "| **S7** | ✅ | ✅ | ✅ | ✅ | x |\n| hello | ✅ | ✅ | ✅ | ✅ | x |\n"
    text += "| S1 | ✅ | ✅ | ✅ | ✅ | x |\n| S1 | ✅ | ✅ | ✅ | ✅ | x |\n"
    assert problems(text) == [
        "line 3: unknown scenario ID S7: neither the catalogue, its aliases, nor any rule or "
        "panel names it",
        "line 4: 'hello' is not a scenario ID",
        "line 6: S1 is claimed twice (also line 5)",
    ]


def test_disagreements_both_ways(make_run) -> None:
    s1 = scenario("S1", [check("metric", "fail"), check("alert", "pass", alert="X")])
    s1_variant = scenario("S1@above", [check("dashboard", "pass")])
    old = T0 - 90 * 86400
    s2 = scenario("S2", [check("dashboard", at=old)], at=old)
    runs = load_runs([make_run("run-1", [s1, s1_variant, s2])])
    matrix = compute_coverage(runs, small_catalogue(), now=T0 + 100, stale_after_s=30 * 86400)
    text = HEADER + (
        # tests partial: agrees; metrics overstated; alerts understated
        "| S1 | ⚠️ | ✅ | ❌ | ✅ | x |\n"
        "| S2 | ❌ | ❌ | ❌ | ✅ | x |\n"  # dashboards stale
        "| NATS-004 | ✅ | ✅ | ✅ | ✅ | x |\n"  # alias of S1
    )
    found = compare(parse_claimed(text, known=KNOWN), matrix)
    got = {(d.scenario_id, d.column): (d.claimed, d.observed, d.direction) for d in found}
    assert got[("S1", "metrics")] == ("covered", "partial", "overstated")
    assert got[("S1", "alerts")] == ("none", "covered", "understated")
    assert ("S1", "tests") not in got and ("S1", "dashboards") not in got  # variant counts
    assert got[("S2", "dashboards")] == ("covered", "stale", "stale")
    assert got[("NATS-004", "metrics")] == ("covered", "partial", "overstated")
    detail = next(d.detail for d in found if d.scenario_id == "S1" and d.column == "metrics")
    assert "S1: partial in run run-1 (metric check: fail)" in detail


def test_ids_outside_the_catalogue_are_observed_none(make_run) -> None:
    matrix = compute_coverage(load_runs([make_run("run-1", [])]), small_catalogue(), now=T0)
    claims = parse_claimed(HEADER + "| NATS-004 | ✅ | ❌ | ❌ | ❌ | x |\n", known={"NATS-004"})
    matrix.rows = [r for r in matrix.rows if r.scenario_id != "S1"]
    (only,) = compare(claims, matrix)
    assert (only.column, only.observed, only.direction) == ("tests", "none", "overstated")
    assert "not in the scenario catalogue" in only.detail


def test_cli_lists_disagreements_and_refuses_bad_files(b1, tmp_path) -> None:
    runner = CliRunner()
    if SEED.is_file():
        done = runner.invoke(app, ["coverage", str(b1), "--claimed", str(SEED), "--json"])
        assert done.exit_code == 1, done.output
        assert '"direction": "overstated"' in done.output
    bad = tmp_path / "claimed.md"
    bad.write_text(HEADER + "| S77 | ✅ | ✅ | ✅ | ✅ | x |\n| S1 | ✅ |\n")
    done = runner.invoke(app, ["coverage", str(b1), "--claimed", str(bad)])
    assert done.exit_code == 2
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert "line 3: unknown scenario ID S77" in done.output
    assert "line 4: malformed row" in done.output
    assert "Traceback" not in done.output
