"""The metric judge on synthetic observations, including each way the issue says a metric
check was fooled: an absolute bound the workload already meets, a ratio against a zero
baseline, a label value nobody maps to, a metric that must stay flat."""

from __future__ import annotations

import pytest

from harness.checks.base import JudgeContext
from harness.checks.metrics import (
    MetricEvidence,
    MetricExpectation,
    Recovery,
    judge_metric,
    recovered,
)

BASE, FAULT = (0.0, 10.0), (10.0, 40.0)


def obs(base: float | None, value: float | None, **kw: object) -> dict[str, object]:
    defaults = {"series_returned": 1, "matched": 1, "baseline_window": BASE, "fault_window": FAULT}
    return {"baseline": base, "value": value, **defaults, **kw}


def judge_(
    expected: MetricExpectation, observed: dict[str, object], ctx: JudgeContext | None = None
) -> tuple[str, str]:
    status, summary, _ = judge_metric(MetricEvidence(expected=expected, **observed), ctx)
    return status, summary


def spec(**kw: object) -> MetricExpectation:
    return MetricExpectation(query="sum(rate(x[$window]))", **kw)  # type: ignore[arg-type]


def test_moved_up_passes_only_above_the_baseline() -> None:
    assert judge_(spec(moved="up"), obs(0.0, 2.5))[0] == "pass"
    assert judge_(spec(moved="up"), obs(2.5, 2.5)) == (
        "fail",
        "did not move up (2.5 vs baseline 2.5)",
    )


def test_absolute_bound_the_baseline_already_meets_fails_with_moved() -> None:
    """Fooled before: `above: 0` on a metric the workload's own poison moved all along."""
    with pytest.raises(ValueError, match="relative to the baseline"):
        spec(above=0)
    status, summary = judge_(spec(moved="up", above=0), obs(0.2, 0.2))
    assert status == "fail" and "did not move up" in summary


def test_ratio_against_zero_baseline_needs_its_floor() -> None:
    """Fooled before: `ratio_at_least` passed on anything when the baseline was 0."""
    with pytest.raises(ValueError, match="absolute floor"):
        spec(ratio_at_least=3)
    s = spec(ratio_at_least=3, above=5)
    assert judge_(s, obs(0.0, 0.01))[0] == "fail"  # zero baseline: the floor decides
    assert judge_(s, obs(0.0, 9.0))[0] == "pass"
    assert judge_(s, obs(4.0, 9.0))[0] == "fail"  # 2.25x < 3x
    assert judge_(s, obs(2.0, 9.0))[0] == "pass"


def test_flat_fails_when_the_fault_moves_it() -> None:
    """The seed's S1: an ACK failure is not a NAK, the NAK redelivery counter stays flat."""
    s = spec(moved="flat", tolerance_abs=0.01)
    assert judge_(s, obs(0.0, 0.0))[0] == "pass"
    status, summary = judge_(s, obs(0.0, 0.8))
    assert status == "fail" and "did not stay flat" in summary
    relative = spec(moved="flat", tolerance=0.1)
    assert judge_(relative, obs(10.0, 10.9))[0] == "pass"
    assert judge_(relative, obs(10.0, 11.5))[0] == "fail"


def test_wrong_label_value_fails_rather_than_errors() -> None:
    """A router labelling `subject="unknown"`: data exists, none with the real labels."""
    s = spec(moved="up", labels={"subject": "beamline.router.v1.decide"})
    observed = obs(None, None, matched=0, labels_seen=[{"subject": "unknown"}])
    status, summary = judge_(s, observed)
    assert status == "fail" and "no series with labels" in summary and "unknown" in summary


def test_no_data_is_an_error_never_a_pass() -> None:
    assert judge_(spec(moved="up"), obs(None, None, series_returned=0))[0] == "error"
    assert judge_(spec(moved="up"), obs(None, 3.0))[0] == "error"  # no baseline
    assert judge_(spec(moved="up"), obs(0.0, 3.0, fault_window=None))[0] == "error"


def test_recovery_is_required_when_asked_for() -> None:
    s = spec(moved="up", recover_within="1m")
    assert judge_(s, obs(0.0, 3.0, recovery=Recovery(recovered_at=None)))[0] == "fail"
    assert judge_(s, obs(0.0, 3.0, recovery=Recovery(recovered_at=55.0)))[0] == "pass"


def test_recovery_is_judged_from_the_polled_points_against_the_deadline() -> None:
    """The poll keeps every point; the judge finds the first one back at the baseline before
    `recover_within` (on the run's clock) has passed since heal."""
    ctx = JudgeContext(time_compression=30.0)  # 1m production = 2 s here
    points = [(40.5, 3.0), (41.5, 2.0), (42.5, 0.0)]
    poll = Recovery(healed_at=40.0, deadline=42.0, baseline=0.0, points=points)
    s = spec(moved="up", recover_within="1m")
    assert judge_(s, obs(0.0, 3.0), ctx)[0] == "fail"  # no poll (heal never proven): no pass
    late = MetricEvidence(expected=s, **obs(0.0, 3.0, recovery=poll))
    status, summary, judged = judge_metric(late, ctx)
    assert status == "fail" and "not back to within 10% of the baseline 1m" in summary
    assert judged.recovery is not None and judged.recovery.recovered_at is None
    slower = spec(moved="up", recover_within="2m")  # 4 s: the point at 42.5 counts
    status, _, judged = judge_metric(late.model_copy(update={"expected": slower}), ctx)
    assert status == "pass" and judged.recovery is not None
    assert judged.recovery.recovered_at == 42.5 and judged.recovery.seconds_after_heal == 2.5


def test_recovered_means_back_to_the_baseline_or_past_it_away_from_the_symptom() -> None:
    """Fooled before the other way: an in-flight gauge at 0 after a baseline of 2 was judged
    'not back within 10 %' although the symptom was over."""
    assert recovered(0.0, 2.0, 0.1, "up") and recovered(2.2, 2.0, 0.1, "up")
    assert not recovered(2.5, 2.0, 0.1, "up"), "still above: the symptom lasts"
    assert recovered(5.0, 2.0, 0.1, "down") and not recovered(1.5, 2.0, 0.1, "down")
    assert recovered(2.1, 2.0, 0.1, None) and not recovered(0.0, 2.0, 0.1, None)
    assert not recovered(0.0, 2.0, 0.1, "flat"), "flat: either way is a change"
