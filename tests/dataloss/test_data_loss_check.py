"""The data_loss check kind with fakes: its judge, what `collect` keeps, the scenario's
expectation (lost: 0 unless it says otherwise), and the data-loss outcome beside the verdict
(silent when no contract alert fired before the final drain ended, noticed when one did)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import yaml

from harness.checks.alerts import ForbiddenEvidence
from harness.checks.base import JudgeContext, RunView
from harness.checks.data_loss import (
    DataLossCheck,
    DataLossEvidence,
    DataLossExpectation,
    judge_data_loss,
    scenario_outcome,
)
from harness.checks.registry import CHECKS, checks_for
from harness.config import PROFILES, Target
from harness.contract import default_contract_path, load_contract
from harness.dataloss import (
    AlertFiring,
    NodeState,
    Published,
    ReadMessage,
    StreamReadback,
)
from harness.evidence.bundle import read_evidence
from harness.evidence.record import CheckResult, PhaseSpan
from harness.plan import plan_for
from harness.prometheus import Series
from harness.prometheus_alerts import AlertInstance
from harness.rejudge import rejudge_scenario
from harness.report.build import write_report
from harness.scenario import load_scenario
from harness.testing import FakePrometheus, FakeStreamReader, FakeWorkload
from tests.report.conftest import T0, check, scenario, write_run

SAMPLE = Path(__file__).parents[2] / "scenarios" / "sample-latency.yaml"
ALERT = "RouterNatsConnectionDown"


def _evidence(
    n: int = 10,
    read: list[int] | None = None,
    *,
    last: int | None = None,
    fired: list[AlertFiring] | None = None,
    **expected: int,
) -> DataLossEvidence:
    read = list(range(1, n + 1)) if read is None else read
    return DataLossEvidence(
        expected=DataLossExpectation(**expected),
        subject="decide",
        tag="t",
        published=[(f"t-{i}", i) for i in range(1, n + 1)],
        readback=StreamReadback(
            stream="DECIDE",
            first_seq=1,
            last_seq=last or max(read, default=0),
            messages=[ReadMessage(seq=i, request_id=f"t-{i}") for i in read],
        ),
        cutoff=T0 + 60,
        alerts_fired=fired or [],
    )


def _result(evidence: DataLossEvidence, *others: CheckResult) -> Any:
    judged = DataLossCheck.judge(evidence, JudgeContext())
    loss = CheckResult(
        name="no acknowledged message lost from the stream",
        kind="data_loss",
        status=judged.status,
        summary=judged.summary,
        evidence=judged.evidence,
    )
    return scenario("DL-1", [loss, *others])


# --- the judge ---------------------------------------------------------------------------------


def test_nothing_lost_passes() -> None:
    status, summary, report = judge_data_loss(_evidence())
    assert status == "pass" and report is not None and report.lost == 0
    assert "10 of 10 acknowledged read back from DECIDE" in summary


def test_a_read_from_the_leader_says_so_in_the_verdict() -> None:
    evidence = _evidence()
    assert evidence.readback is not None
    evidence.readback.read_by, evidence.readback.note = "msg_get", "the consumer said nothing"
    status, summary, _ = judge_data_loss(evidence)
    assert status == "pass" and "read from the stream leader: the consumer said nothing" in summary
    again = StreamReadback.model_validate_json(evidence.readback.model_dump_json())
    assert again.read_by == "msg_get" and again.note == "the consumer said nothing"


def test_lost_messages_fail_with_their_sequence_ranges() -> None:
    status, summary, report = judge_data_loss(_evidence(10, [1, 2, 3, 6, 7], last=10))
    assert status == "fail" and report is not None
    assert report.lost == 5 and [str(r) for r in report.lost_ranges] == ["4-5", "8-10"]
    assert "seq 4-5, 8-10 (0 prefix, 2 middle, 3 suffix)" in summary
    assert summary.endswith("no contract alert fired")


def test_a_scenario_may_allow_a_bound() -> None:
    assert judge_data_loss(_evidence(10, [1, 2, 3, 4, 5, 6, 7, 8], lost=2))[0] == "pass"
    assert judge_data_loss(_evidence(10, [1, 2, 3, 4, 5, 6, 7], lost=2))[0] == "fail"


def test_duplicates_and_unexpected_are_recorded_and_judged() -> None:
    evidence = _evidence(3)
    assert evidence.readback is not None
    evidence.readback.messages += [
        ReadMessage(seq=4, request_id="t-1"),
        ReadMessage(seq=5, request_id="t-77"),
    ]
    status, summary, report = judge_data_loss(evidence)
    assert status == "fail" and report is not None
    assert (report.duplicated, report.unexpected) == (1, 1)
    assert "1 request(s) stored twice" in summary and "1 unexpected" in summary
    evidence.expected = DataLossExpectation(duplicated=1, unexpected=1)
    assert judge_data_loss(evidence)[0] == "pass"


def test_an_unreadable_stream_or_nothing_acked_is_an_error() -> None:
    unreadable = _evidence()
    unreadable.readback = StreamReadback(stream="DECIDE", error="connect refused")
    assert judge_data_loss(unreadable)[:2] == (
        "error",
        "the stream could not be read back: connect refused",
    )
    assert judge_data_loss(DataLossEvidence())[0] == "error"
    none_acked = _evidence(0, [])
    assert judge_data_loss(none_acked)[0] == "error"


def test_per_node_lacks() -> None:
    evidence = _evidence(10)
    assert evidence.readback is not None
    evidence.readback.nodes = [
        NodeState(node="n1", role="leader", first_seq=1, last_seq=10, messages=10),
        NodeState(node="n2", role="replica", first_seq=1, last_seq=7, current=False),
        NodeState(node="n3", error="GET http://n3/jsz: ConnectError"),
    ]
    status, summary, report = judge_data_loss(evidence)
    assert status == "pass" and report is not None
    by_node = {n.node: n for n in report.nodes}
    assert by_node["n1"].lacking == 0 and by_node["n1"].holes == 0
    assert by_node["n2"].lacking == 3 and [str(r) for r in by_node["n2"].lacks] == ["8-10"]
    assert by_node["n3"].error and by_node["n3"].lacking == 0
    assert "node n2 lacks 3 (seq 8-10)" in summary


# --- the outcome beside the verdict ------------------------------------------------------------


def test_loss_with_no_alert_is_silent() -> None:
    result = _result(_evidence(10, [1, 2, 3], last=10))
    found = scenario_outcome(result)
    assert found is not None and found.judged and found.lost == 7
    assert found.silent and not found.noticed
    assert found.headline().startswith("SILENT DATA LOSS: 7 acknowledged message(s) lost")


def test_loss_noticed_by_an_alert_the_check_saw_firing() -> None:
    fired = [AlertFiring(alert=ALERT, at=T0 + 20)]
    found = scenario_outcome(_result(_evidence(10, [1, 2, 3], last=10, fired=fired)))
    assert found is not None and found.lost == 7 and not found.silent
    assert [a.alert for a in found.alerts_fired] == [ALERT]
    assert found.headline().endswith(f"noticed by {ALERT}")


def test_an_alert_checks_observation_counts_but_not_after_the_drain() -> None:
    def forbidden(at: float) -> CheckResult:
        return check(
            "alert_forbidden",
            "fail",
            alert=ALERT,
            alerts_series=[AlertInstance(labels={}, firing=[at]).model_dump()],
        )

    lossy = _evidence(10, [1, 2, 3], last=10)
    before = scenario_outcome(_result(lossy, forbidden(T0 + 30)))
    assert before is not None and not before.silent
    assert isinstance(forbidden(T0).evidence, ForbiddenEvidence)
    after = scenario_outcome(_result(lossy, forbidden(T0 + 61)))  # cutoff is T0 + 60
    assert after is not None and after.silent


def test_no_loss_is_never_silent_and_an_opted_out_scenario_has_no_outcome() -> None:
    found = scenario_outcome(_result(_evidence()))
    assert found is not None and found.lost == 0 and not found.silent
    assert found.headline() == "no data loss (10 of 10 acknowledged read back)"
    assert scenario_outcome(scenario("X", [check("delivery")])) is None


def test_an_erroring_check_is_an_unjudged_outcome() -> None:
    unreadable = _evidence()
    unreadable.readback = StreamReadback(stream="DECIDE", error="timeout")
    found = scenario_outcome(_result(unreadable))
    assert found is not None and not found.judged and not found.silent
    assert "could not be read back: timeout" in (found.error or "")


# --- the scenario's expectation ----------------------------------------------------------------


def _scenario_with(tmp_path: Path, expect: dict[str, Any] | None) -> Any:
    doc = yaml.safe_load(SAMPLE.read_text())
    if expect is not None:
        doc["expect"].update(expect)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_scenario(path)


def _target() -> Target:
    return Target(
        name="t",
        kind="local",
        nats_url="nats://127.0.0.1:4222",
        toxiproxy_url="http://127.0.0.1:8474",
        prometheus_url="http://127.0.0.1:9090",
        alertmanager_url="http://127.0.0.1:9093",
        profile=PROFILES["local"],
    )


def test_every_scenario_expects_lost_zero_unless_it_says_otherwise(tmp_path: Path) -> None:
    assert "data_loss" in CHECKS
    default = _scenario_with(tmp_path, None)
    assert default.expect.data_loss == DataLossExpectation(lost=0)
    built = [c for c in checks_for(default, _target(), None, None) if c.kind == "data_loss"]  # type: ignore[arg-type]
    assert len(built) == 1
    bound = _scenario_with(tmp_path, {"data_loss": {"lost": 5}})
    assert bound.expect.data_loss.lost == 5
    off = _scenario_with(tmp_path, {"data_loss": None})
    assert not [c for c in checks_for(off, _target(), None, None) if c.kind == "data_loss"]  # type: ignore[arg-type]


# --- collect with fakes, kept for rejudge, shown in the report ---------------------------------


def _collect(series: list[Series]) -> tuple[Any, FakePrometheus]:
    """The check's collect against fakes: 10 acked publishes (and one not acked), a stream
    that lost 4-6, one node, sync every 120 s; the scenario's recover phase ends at T0+60."""
    sc = load_scenario(SAMPLE)
    target = _target()
    prometheus = FakePrometheus()
    prometheus.stored['ALERTS{alertstate="firing"}'] = series
    streams = FakeStreamReader(lost={4, 5, 6})
    result = scenario("SAMPLE-001", [])
    result.phases.append(PhaseSpan(phase="recover", start=T0 + 40, end=T0 + 60, status="ok"))
    workload = FakeWorkload()
    history = workload.history()
    history.published.append(Published("fake-x", None))
    view = RunView(
        target=target,
        scenario=sc,
        plan=plan_for(sc, target.profile),
        contract=load_contract(default_contract_path()),
        result=result,
        prometheus=prometheus,  # type: ignore[arg-type]
        alertmanager=None,  # type: ignore[arg-type]
        receiver=None,
        alerts=None,  # type: ignore[arg-type]
        history=lambda: history,
        streams=streams,  # type: ignore[arg-type]
    )
    loss_check = DataLossCheck(DataLossExpectation(), prometheus)  # type: ignore[arg-type]
    checked = anyio.run(loss_check.verdict, view)
    assert streams.reads == [{"stream": "FAKE", "start_seq": 1, "timeout": 25}]
    result.checks.append(checked)
    return result, prometheus


def test_collect_keeps_the_history_and_readback_and_judges_silent_loss() -> None:
    late = Series({"alertname": ALERT, "alertstate": "firing"}, [(T0 + 70, 1.0)])
    result, prometheus = _collect([late])
    checked = result.checks[0]
    assert checked.status == "fail", checked.summary
    ev = checked.evidence
    assert isinstance(ev, DataLossEvidence)
    assert ev.published[-1] == ("fake-x", None) and len(ev.published) == 11
    assert ev.readback is not None and len(ev.readback.messages) == 7
    assert [str(d) for d in ev.durability] == ["fake-1: sync every 120s"]
    assert ev.cutoff == T0 + 60 and ev.alerts_fired == []  # it fired after the drain
    assert prometheus.queries == ['ALERTS{alertstate="firing"}']
    assert ev.report is not None and [str(r) for r in ev.report.lost_ranges] == ["4-6"]
    found = scenario_outcome(result)
    assert found is not None and found.silent and found.lost == 3


def test_kept_evidence_rejudges_exactly_and_the_report_shows_silent_loss_first(
    tmp_path: Path,
) -> None:
    result, _ = _collect([])
    result.data_loss = scenario_outcome(result)
    result.verdict = "failed"
    run = write_run(tmp_path / "run", "run-1", [result])
    stored = read_evidence(run).scenarios[0]
    assert stored.data_loss is not None and stored.data_loss.silent
    again = rejudge_scenario(stored, JudgeContext())
    assert again.checks == stored.checks and again.data_loss == stored.data_loss
    doc = json.loads((run / "evidence.json").read_text())["scenarios"][0]
    assert doc["data_loss"]["silent"] is True and doc["data_loss"]["lost"] == 3
    written = write_report([run], tmp_path / "out")
    html = written.html.read_text()
    top = html.index('id="data-loss"')
    assert top < html.index('id="verdicts"')
    assert "SILENT DATA LOSS in 1 scenario(s)" in html
    assert "3 acknowledged message(s) lost (seq 4-6)" in html
    assert "fake-1: sync every 120s" in html


def test_a_node_holding_fewer_messages_than_its_range_has_holes() -> None:
    evidence = _evidence(10, [1, 2, 3, 4, 5], last=10)
    assert evidence.readback is not None
    evidence.readback.nodes = [NodeState(node="n1", first_seq=1, last_seq=10, messages=5)]
    status, summary, report = judge_data_loss(evidence)
    assert status == "fail" and report is not None
    assert report.nodes[0].holes == 5 and report.nodes[0].lacking == 0
    assert "node n1 holds 5 fewer message(s) than its sequence range" in summary
