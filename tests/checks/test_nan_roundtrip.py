"""A NaN sample (a ratio over an idle denominator) survives the evidence's JSON: written as
null, read back as NaN, so a stored run can be reported and judged again."""

from __future__ import annotations

import json
import math

from harness.checks.metrics import SampleRecord, SeriesRecord


def test_nan_points_round_trip_through_json() -> None:
    # the run record writes a NaN sample as null (plain JSON has no NaN token)
    written = json.loads('{"labels": {"a": "b"}, "points": [[1.0, null], [2.0, 0.5]]}')
    back = SeriesRecord.model_validate(written)
    assert math.isnan(back.points[0][1]) and back.points[1][1] == 0.5


def test_nan_sample_round_trips_through_json() -> None:
    back = SampleRecord.model_validate(json.loads('{"value": null, "timestamp": 1.0}'))
    assert math.isnan(back.value)
