"""The coverage matrix from run records: cell states, ageing, history, inverse lists."""

from __future__ import annotations

from harness.report.coverage import Element, compute_coverage, merge_status, observed_status
from harness.report.inventory import Inventory, PanelEntry, RuleEntry, ScenarioEntry
from harness.report.runs import load_runs
from tests.report.conftest import T0, check, scenario

DAY = 86400.0


def small_catalogue() -> Inventory:
    return Inventory(
        scenarios={
            "S1": ScenarioEntry("S1", "S1", "one", ("NATS-004",)),
            "S2": ScenarioEntry("S2", "S2", "two"),
            "S9": ScenarioEntry("S9", "S9", "never run"),
        },
        rules={
            "Fired": RuleEntry("Fired", "rules.yml", ("S1",)),
            "Silent": RuleEntry("Silent", "rules.yml", ("S2",)),
        },
        metrics={"router_a_total", "router_b_total", "router_c_total", "router_d", "router_h"},
        histograms={"router_h"},
        out_of_scope={"router_d": "set once at start-up"},
        panels=[PanelEntry("dash", "Shown", ("S1",)), PanelEntry("dash", "Never", ())],
    )


def fired_check(alert: str, status: str = "pass") -> object:
    return check(
        "alert",
        status,
        name=f"alert {alert} fires",
        alert=alert,
        alerts_series=[{"labels": {}, "pending": [T0 + 12], "firing": [T0 + 15]}],
    )


def test_element_states() -> None:
    assert observed_status([]) == "none"
    assert observed_status([Element("a", "pass")]) == "covered"
    assert observed_status([Element("a", "pass"), Element("b", "error")]) == "partial"
    assert observed_status([Element("a", "fail")]) == "partial"
    assert merge_status(["none", "none"]) == "none"
    assert merge_status(["covered", "none"]) == "covered"
    assert merge_status(["covered", "stale"]) == "stale"
    assert merge_status(["stale", "partial", "covered"]) == "partial"


def test_cells_covered_partial_none_with_run_and_time(make_run) -> None:
    s1 = scenario(
        "S1",
        [
            check(
                "metric",
                "pass",
                name="metric up",
                expected={"query": "rate(router_a_total[1m])", "moved": "up"},
            ),
            check(
                "metric",
                "fail",
                name="metric down",
                expected={"query": "router_b_total", "moved": "down"},
            ),
            fired_check("Fired"),
            check("delivery", "pass"),
        ],
    )
    runs = load_runs([make_run("run-1", [s1])])
    matrix = compute_coverage(runs, small_catalogue(), now=T0 + DAY)
    row = matrix.row("S1")
    assert row is not None and row.verdict == "failed" and row.aliases == ["NATS-004"]
    assert row.cells["metrics"].status == "partial"
    assert [e.status for e in row.cells["metrics"].failing] == ["fail"]
    assert row.cells["alerts"].status == "covered"
    assert row.cells["alerts"].run_id == "run-1"
    assert row.cells["alerts"].verified_at == T0 + 60
    assert row.cells["dashboards"].status == "none"
    tests = row.cells["tests"]
    assert tests.status == "partial"  # the JUnit cases: checks plus the fault's heal case
    assert "fault toxic healed (run-1-S1-f0)" in [e.name for e in tests.elements]
    assert matrix.row("S9").verdict == "not run"
    assert all(c.status == "none" for c in matrix.row("S9").cells.values())


def test_cells_go_stale_after_the_configured_age(make_run) -> None:
    runs = load_runs([make_run("run-1", [scenario("S2", [check("dashboard")])])])
    fresh = compute_coverage(runs, small_catalogue(), now=T0 + DAY, stale_after_s=2 * DAY)
    old = compute_coverage(runs, small_catalogue(), now=T0 + 3 * DAY, stale_after_s=2 * DAY)
    assert fresh.row("S2").cells["dashboards"].status == "covered"
    cell = old.row("S2").cells["dashboards"]
    assert (cell.status, cell.observed) == ("stale", "covered")
    assert old.row("S2").cells["metrics"].status == "none"  # nothing observed never ages


def test_latest_run_wins_and_the_last_covered_one_is_kept(make_run) -> None:
    good = make_run("run-1", [scenario("S2", [check("metric")], run_id="run-1")], at=T0)
    bad = make_run(
        "run-2",
        [scenario("S2", [check("metric", "error")], run_id="run-2", at=T0 + 100)],
        at=T0 + 100,
    )
    matrix = compute_coverage(load_runs([bad, good]), small_catalogue(), now=T0 + 200)
    cell = matrix.row("S2").cells["metrics"]
    assert (cell.status, cell.run_id) == ("partial", "run-2")
    assert cell.last_covered == {"run_id": "run-1", "at": T0 + 60}
    assert matrix.runs == ["run-1", "run-2"]


def test_inverse_lists(make_run) -> None:
    s1 = scenario(
        "S1",
        [
            check(
                "metric",
                "pass",
                expected={"query": "sum(rate(router_a_total[$window]))", "moved": "up"},
            ),
            check("metric", "pass", expected={"query": "router_b_total", "moved": "flat"}),
            check(
                "dashboard",
                "pass",
                expected={"dashboard": "dash", "panel": "Shown"},
                queries=[
                    {"query": "histogram_quantile(0.9, rate(router_h_bucket[1m]))", "moved": True}
                ],
            ),
            fired_check("Fired"),
            check("alert_forbidden", "pass", alert="Fired"),
            check("alert_forbidden", "pass", alert="Silent"),
        ],
    )
    matrix = compute_coverage(load_runs([make_run("run-1", [s1])]), small_catalogue(), now=T0)
    gaps = {k: {g.item: g.detail for g in v} for k, v in matrix.inverse.items()}
    assert set(gaps["alerts_never_fired"]) == {"Silent"}
    assert "S2" in gaps["alerts_never_fired"]["Silent"]
    assert set(gaps["forbidden_never_proven_alive"]) == {"Silent"}
    # a passing flat check shows its family works (where the scenario says it must stay flat);
    # an out-of-scope family is listed apart, with the contract's reason
    assert gaps["metrics_never_moved"] == {"router_c_total": "no check reads it"}
    assert gaps["metrics_out_of_scope"] == {"router_d": "set once at start-up"}
    assert set(gaps["panels_never_showed_symptom"]) == {"dash / Never"}
    assert set(gaps["scenarios_not_run"]) == {"S2", "S9"}


def test_recorded_evidence_and_the_project_catalogue(b1, a2, inventory) -> None:
    matrix = compute_coverage(load_runs([b1, a2]), inventory, now=T0 + 30 * DAY)
    ids = [r.scenario_id for r in matrix.rows]
    assert ids.index("S1") < ids.index("S1@above") < ids.index("S2") < ids.index("S3@below")
    above = matrix.row("S1@above")
    assert above.run_id == "20261201T101755-9526f6"  # a2 is newer than b1's failing result
    assert above.cells["alerts"].status == "covered"
    assert above.cells["alerts"].last_covered["run_id"] == "20261201T101755-9526f6"
    below = matrix.row("S3@below")
    assert below.cells["alerts"].status == "partial"
    assert matrix.row("S1").verdict == "not run"
    document = matrix.document()
    assert document["schema"] == "harness.coverage/v1"
    assert document["columns"] == ["tests", "metrics", "alerts", "dashboards"]
