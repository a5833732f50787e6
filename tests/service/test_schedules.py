"""Schedules: cron in a zone, windows, blackouts, DST, jitter, missed vs catch-up, file errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from harness.paths import project_root
from harness.service.schedules import (
    DISABLED,
    MAX_LISTED,
    OUTSIDE_WINDOW,
    Decision,
    Schedule,
    due,
    jitter_for,
    load_schedules,
    next_fire,
)
from harness.yamlfile import FileProblems

BERLIN = ZoneInfo("Europe/Berlin")
EXAMPLE = project_root() / "deploy" / "harness" / "schedules.example.yaml"


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def schedule(**fields: Any) -> Schedule:
    return Schedule.model_validate({"name": "gd", "scenarios": "all", **fields})


def gameday(**fields: Any) -> Schedule:
    """Tue/Thu 10:00 Berlin, inside a Tue/Thu 10:00–12:00 window."""
    window = {"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}
    base = {"cron": "0 10 * * *", "timezone": "Europe/Berlin", "windows": [window]}
    return schedule(**{**base, **fields})


# -- next_fire: windows, blackouts, DST ------------------------------------------------------


def test_window_admits_only_tuesday_and_thursday() -> None:
    s = gameday()  # the cron fires daily; the window keeps Tue/Thu
    fires, after = [], berlin(2025, 6, 2, 0, 0)  # a Monday
    for _ in range(4):
        after = next_fire(s, after)
        fires.append(after)
    assert fires == [
        berlin(2025, 6, 3, 10, 0),
        berlin(2025, 6, 5, 10, 0),
        berlin(2025, 6, 10, 10, 0),
        berlin(2025, 6, 12, 10, 0),
    ]
    assert all(f.tzinfo == UTC for f in fires)


def test_fire_time_is_in_the_zone_not_utc() -> None:
    fire = next_fire(gameday(), utc(2025, 1, 6, 0, 0))
    assert fire == utc(2025, 1, 7, 9, 0)  # 10:00 CET
    summer = next_fire(gameday(), utc(2025, 7, 7, 0, 0))
    assert summer == utc(2025, 7, 8, 8, 0)  # 10:00 CEST


def test_window_end_is_exclusive_and_leaves_room_for_jitter() -> None:
    tuesday = berlin(2025, 6, 3, 0, 0)
    late = gameday(cron="0 11,12 * * *")
    assert next_fire(late, tuesday) == berlin(2025, 6, 3, 11, 0)
    assert next_fire(late, berlin(2025, 6, 3, 11, 0)) == berlin(2025, 6, 5, 11, 0)  # not 12:00
    # With 1h jitter a 11:00 fire could start at 12:00, outside [10:00, 12:00): only 10:00 fits.
    assert next_fire(gameday(cron="0 10,11 * * *", jitter="1h"), tuesday) == (
        berlin(2025, 6, 3, 10, 0)
    )
    assert next_fire(gameday(cron="0 10,11 * * *", jitter="1h"), berlin(2025, 6, 3, 10, 0)) == (
        berlin(2025, 6, 5, 10, 0)
    )
    assert next_fire(gameday(cron="30 11 * * *", jitter="1h"), tuesday) is None


def test_blackout_dates_are_passed_over() -> None:
    s = gameday(blackout=["2025-06-03", "2025-06-05"])
    assert next_fire(s, berlin(2025, 6, 2, 0, 0)) == berlin(2025, 6, 10, 10, 0)


def test_blackout_date_is_the_zones_date() -> None:
    # 00:30 Berlin on 4 June is still 3 June in UTC: the Berlin date decides.
    s = schedule(cron="30 0 * * *", timezone="Europe/Berlin", blackout=["2025-06-04"])
    assert next_fire(s, berlin(2025, 6, 3, 12, 0)) == berlin(2025, 6, 5, 0, 30)


def test_spring_forward_skipped_time_fires_at_the_jump() -> None:
    # 30 March 2025: Berlin clocks go 02:00 CET -> 03:00 CEST; 02:30 never happens.
    s = schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    fire = next_fire(s, berlin(2025, 3, 29, 12, 0))
    assert fire == utc(2025, 3, 30, 1, 0)
    assert fire.astimezone(BERLIN).hour == 3 and fire.astimezone(BERLIN).minute == 0
    assert next_fire(s, fire) == berlin(2025, 3, 31, 2, 30)


def test_spring_forward_hourly_fires_once_per_real_hour() -> None:
    s = schedule(cron="0 * * * *", timezone="Europe/Berlin")
    fires, after = [], berlin(2025, 3, 30, 0, 30)
    for _ in range(3):
        after = next_fire(s, after)
        fires.append(after.astimezone(UTC))
    # 01:00 CET, then the skipped 02:00 and the real 03:00 CEST are one instant: 01:00 UTC.
    assert fires == [utc(2025, 3, 30, 0, 0), utc(2025, 3, 30, 1, 0), utc(2025, 3, 30, 2, 0)]


def test_fall_back_repeated_time_fires_once() -> None:
    # 26 October 2025: Berlin clocks go 03:00 CEST -> 02:00 CET; 02:30 happens twice.
    s = schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    first = next_fire(s, berlin(2025, 10, 25, 12, 0))
    assert first == utc(2025, 10, 26, 0, 30)  # 02:30 CEST, the first occurrence
    assert next_fire(s, first) == berlin(2025, 10, 27, 2, 30)
    # Asked during the second 02:xx hour, the repeated time is not offered again.
    second_hour = utc(2025, 10, 26, 1, 10).astimezone(BERLIN)
    assert second_hour.fold == 1
    assert next_fire(s, second_hour) == berlin(2025, 10, 27, 2, 30)


def test_window_follows_the_wall_clock_across_dst() -> None:
    s = gameday()
    before = next_fire(s, berlin(2025, 3, 26, 12, 0))  # Thu 27 March, CET
    after = next_fire(s, before)  # Tue 1 April, CEST
    assert (before, after) == (utc(2025, 3, 27, 9, 0), utc(2025, 4, 1, 8, 0))


def test_no_fire_within_the_horizon_is_none() -> None:
    monday_cron = gameday(cron="0 10 * * mon")  # the window only admits Tue/Thu
    assert next_fire(monday_cron, berlin(2025, 6, 1, 0, 0)) is None
    assert next_fire(gameday(enabled=False), berlin(2025, 6, 1, 0, 0)) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        next_fire(gameday(), datetime(2025, 6, 1))
    with pytest.raises(ValueError, match="naive"):
        due(gameday(), datetime(2025, 6, 1), utc(2025, 6, 2))


# -- due: run, missed, skipped, catch-up ----------------------------------------------------


def test_due_runs_the_fire_time_seen_on_time() -> None:
    s = gameday()
    decision = due(s, berlin(2025, 6, 3, 9, 59), berlin(2025, 6, 3, 10, 0, 3))
    assert decision == Decision(run_at=berlin(2025, 6, 3, 10, 0), missed=[], skipped=[])


def test_due_with_nothing_in_the_interval() -> None:
    s = gameday()
    assert due(s, berlin(2025, 6, 3, 10, 0), berlin(2025, 6, 3, 10, 30)) == Decision(None)
    assert due(s, berlin(2025, 6, 3, 10, 0), berlin(2025, 6, 3, 9, 0)) == Decision(None)


def test_due_interval_is_half_open() -> None:
    s = gameday()
    assert due(s, berlin(2025, 6, 3, 9, 0), berlin(2025, 6, 3, 10, 0)).run_at == (
        berlin(2025, 6, 3, 10, 0)
    )
    assert due(s, berlin(2025, 6, 3, 10, 0), berlin(2025, 6, 3, 10, 1)).run_at is None


def test_outage_records_missed_and_does_not_run_late() -> None:
    s = gameday()
    # Down from Monday to Thursday 10:30: Tuesday's and Thursday's game-days are missed.
    decision = due(s, berlin(2025, 6, 2, 9, 0), berlin(2025, 6, 5, 10, 30))
    assert decision.run_at is None
    assert decision.missed == [berlin(2025, 6, 3, 10, 0), berlin(2025, 6, 5, 10, 0)]
    # The daily cron's Monday and Wednesday fire times fall outside the window.
    assert decision.skipped == [
        (berlin(2025, 6, 2, 10, 0), OUTSIDE_WINDOW),
        (berlin(2025, 6, 4, 10, 0), OUTSIDE_WINDOW),
    ]


def test_within_grace_runs_the_latest_and_misses_the_older() -> None:
    s = gameday()
    decision = due(s, berlin(2025, 6, 2, 9, 0), berlin(2025, 6, 5, 10, 4))
    assert decision.run_at == berlin(2025, 6, 5, 10, 0)
    assert decision.missed == [berlin(2025, 6, 3, 10, 0)]
    tight = due(s, berlin(2025, 6, 5, 9, 0), berlin(2025, 6, 5, 10, 4), grace=timedelta(minutes=3))
    assert (tight.run_at, tight.missed) == (None, [berlin(2025, 6, 5, 10, 0)])


def test_catch_up_runs_the_latest_missed_once() -> None:
    s = gameday(catch_up=True)
    decision = due(s, berlin(2025, 6, 2, 9, 0), berlin(2025, 6, 5, 11, 0))
    assert decision.run_at == berlin(2025, 6, 5, 10, 0)
    assert decision.missed == [berlin(2025, 6, 3, 10, 0)]


def test_catch_up_never_starts_outside_a_window() -> None:
    s = gameday(catch_up=True)
    # Back on Wednesday afternoon: Tuesday's game-day is not run on a Wednesday.
    decision = due(s, berlin(2025, 6, 2, 9, 0), berlin(2025, 6, 4, 15, 0))
    assert decision.run_at is None
    assert decision.missed == [berlin(2025, 6, 3, 10, 0)]


def test_catch_up_without_windows_runs_at_any_hour() -> None:
    s = schedule(cron="0 10 * * *", catch_up=True)
    decision = due(s, utc(2025, 6, 2, 11, 0), utc(2025, 6, 4, 3, 0))
    assert decision.run_at == utc(2025, 6, 3, 10, 0)
    assert decision.missed == []


def test_blackout_and_window_go_to_skipped_with_the_reason() -> None:
    s = gameday(blackout=[date(2025, 6, 3)])
    decision = due(s, berlin(2025, 6, 3, 9, 0), berlin(2025, 6, 4, 10, 1))
    assert decision.run_at is None and decision.missed == []
    assert decision.skipped == [
        (berlin(2025, 6, 3, 10, 0), "blackout date 2025-06-03"),
        (berlin(2025, 6, 4, 10, 0), OUTSIDE_WINDOW),
    ]


def test_disabled_schedule_skips_everything() -> None:
    s = gameday(enabled=False)
    decision = due(s, berlin(2025, 6, 2, 9, 0), berlin(2025, 6, 5, 10, 1))
    assert decision.run_at is None and decision.missed == []
    assert [reason for _, reason in decision.skipped] == [
        OUTSIDE_WINDOW,
        DISABLED,
        OUTSIDE_WINDOW,
        DISABLED,
    ]


def test_due_across_fall_back_sees_the_repeated_time_once() -> None:
    s = schedule(cron="*/30 2 * * *", timezone="Europe/Berlin")
    now = utc(2025, 10, 26, 1, 10).astimezone(BERLIN)  # 02:10 CET, the second 02:xx hour
    decision = due(s, utc(2025, 10, 25, 23, 0), now, grace=timedelta(hours=2))
    # 02:00 and 02:30 CEST fired in the first hour; 02:00 CET is not a second fire.
    assert decision.run_at == utc(2025, 10, 26, 0, 30)
    assert decision.missed == [utc(2025, 10, 26, 0, 0)]


def test_long_outage_lists_the_newest_times_only() -> None:
    s = schedule(cron="* * * * *")
    decision = due(s, utc(2025, 6, 1), utc(2025, 6, 3))
    assert decision.truncated
    assert decision.run_at == utc(2025, 6, 3)
    assert len(decision.missed) == MAX_LISTED - 1
    assert decision.missed[-1] == utc(2025, 6, 2, 23, 59)


# -- jitter ---------------------------------------------------------------------------------


def test_jitter_is_within_bounds_and_spread() -> None:
    s = gameday(jitter="20m")
    fire = berlin(2025, 6, 3, 10, 0)
    delays = {jitter_for(s, fire, seed=f"install-{i}") for i in range(200)}
    assert all(timedelta(0) <= d <= timedelta(minutes=20) for d in delays)
    assert len(delays) > 150  # not a constant
    assert max(delays) - min(delays) > timedelta(minutes=15)


def test_jitter_is_deterministic_per_schedule_and_instant() -> None:
    s = gameday(jitter="20m")
    fire = berlin(2025, 6, 3, 10, 0)
    assert jitter_for(s, fire, "x") == jitter_for(gameday(jitter="20m"), fire, "x")
    assert jitter_for(s, fire, "x") == jitter_for(s, fire.astimezone(UTC), "x")  # same instant
    others = [
        jitter_for(s, berlin(2025, 6, 5, 10, 0), "x"),
        jitter_for(gameday(name="other", jitter="20m"), fire, "x"),
        jitter_for(s, fire, "y"),
    ]
    assert jitter_for(s, fire, "x") not in others


def test_no_jitter_is_zero() -> None:
    assert jitter_for(gameday(), berlin(2025, 6, 3, 10, 0), "x") == timedelta(0)


# -- the model ------------------------------------------------------------------------------


def test_unquoted_yaml_times_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "schedules:\n"
        "  - name: gd\n"
        "    cron: '0 10 * * *'\n"
        "    scenarios: all\n"
        "    windows: [{days: [mon], start: 10:00, end: 11:30:15}]\n"
    )
    (loaded,) = load_schedules(path)
    assert (loaded.windows[0].start, loaded.windows[0].end) == (time(10, 0), time(11, 30, 15))


def test_example_file_loads() -> None:
    schedules = {s.name: s for s in load_schedules(EXAMPLE)}
    assert set(schedules) == {"weekly-gameday", "nightly-catalogue"}
    weekly = schedules["weekly-gameday"]
    assert weekly.zone == BERLIN and weekly.jitter == 20 * 60
    assert [g.alert or g.promql for g in weekly.guards][0] == "CheckoutAvailabilitySLOBurn"
    assert next_fire(weekly, berlin(2025, 12, 22, 12, 0)) == berlin(2026, 1, 6, 10, 0)
    assert schedules["nightly-catalogue"].scenarios == "all"


HEAD = "schedules:\n  - name: gd\n    scenarios: all\n"  # lines 1-3
CRON = "    cron: '0 10 * * *'\n"
BAD_CASES = {
    "bad cron": (HEAD + "    cron: '0 25 * * *'\n", 4, "cron", "invalid cron expression"),
    "six-field cron": (HEAD + "    cron: '0 0 10 * * *'\n", 4, "cron", "must have 5 fields"),
    "bad timezone": (
        HEAD + CRON + "    timezone: Europe/Atlantis\n",
        5,
        "timezone",
        "unknown time",
    ),
    "unknown field": (HEAD + CRON + "    catchup: true\n", 5, "catchup", "unknown key"),
    "both alert and promql": (
        HEAD + CRON + "    guards:\n      - name: slo\n        alert: A\n        promql: up == 0\n",
        8,
        "guards[0].promql",
        "either alert or promql, not both",
    ),
    "guard with neither": (
        HEAD + CRON + "    guards:\n      - name: slo\n",
        6,
        "guards[0]",
        "needs an alert or a promql",
    ),
    "end before start": (
        HEAD
        + CRON
        + "    windows:\n      - days: [tue]\n        start: 12:00\n        end: 10:00\n",
        8,
        "windows[0].end",
        "must be after start (12:00)",
    ),
    "unknown day": (
        HEAD + CRON + "    windows:\n      - {days: [tuesday], start: 10:00, end: 12:00}\n",
        6,
        "windows[0].days[0]",
        "Input should be 'mon'",
    ),
    "jitter longer than window": (
        HEAD + CRON + "    windows: [{days: [tue], start: 10:00, end: 10:30}]\n    jitter: 30m\n",
        6,
        "jitter",
        "must be shorter than windows[0] (30m)",
    ),
    "jitter as a number": (HEAD + CRON + "    jitter: 30\n", 5, "jitter", "with a unit"),
    "bad name": (
        "schedules:\n  - name: Weekly Gameday\n    scenarios: all\n" + CRON,
        2,
        "name",
        "must be a slug",
    ),
    "scenarios neither list nor all": (
        HEAD.replace("all", "S1") + CRON,
        3,
        "scenarios",
        "",
    ),
}


@pytest.mark.parametrize("case", BAD_CASES.values(), ids=BAD_CASES.keys())
def test_malformed_file_names_file_line_and_field(
    tmp_path: Path, case: tuple[str, int, str, str]
) -> None:
    text, line, field, message = case
    path = tmp_path / "schedules.yaml"
    path.write_text(text)
    with pytest.raises(FileProblems) as caught:
        load_schedules(path)
    field = f"schedules[0].{field}"
    problems = [p for p in caught.value.problems if p.field == field]
    assert problems, f"no problem at {field}: {caught.value}"
    assert problems[0].line == line, str(caught.value)
    assert message in problems[0].message, str(caught.value)
    assert str(problems[0]).startswith(f"{path}:{line} {field}: ")


def test_duplicate_names_point_at_the_second(tmp_path: Path) -> None:
    path = tmp_path / "schedules.yaml"
    entry = "  - name: {name}\n    cron: '0 10 * * *'\n    scenarios: all\n"
    path.write_text(
        "schedules:\n"
        + entry.format(name="a")
        + entry.format(name="b")
        + entry.format(name="a")
        + entry.format(name="b")
    )
    with pytest.raises(FileProblems) as caught:
        load_schedules(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:8 schedules[2].name: duplicate schedule name 'a' (first defined on line 2)",
        f"{path}:11 schedules[3].name: duplicate schedule name 'b' (first defined on line 5)",
    ]


def test_top_level_must_be_schedules(tmp_path: Path) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text("- name: a\n")
    with pytest.raises(FileProblems, match="expected a mapping"):
        load_schedules(path)
    path.write_text("schedule: []\n")
    with pytest.raises(FileProblems) as caught:
        load_schedules(path)
    assert {p.field for p in caught.value.problems} == {"schedule", "schedules"}


def test_scenarios_all_or_a_nonempty_list() -> None:
    assert schedule(cron="0 10 * * *").scenarios == "all"
    assert schedule(cron="0 10 * * *", scenarios=["S1"]).scenarios == ["S1"]
    for bad in ([], "S1"):
        with pytest.raises(ValueError, match="scenarios"):
            schedule(cron="0 10 * * *", scenarios=bad)
