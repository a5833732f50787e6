"""Durations as the rules, profiles and scenarios write them."""

import pytest

from harness.durations import format_duration_ms, parse_duration, parse_duration_ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [("90s", 90_000), ("1h30m", 5_400_000), ("500ms", 500), ("1m30s", 90_000), ("2d", 172_800_000)],
)
def test_parse(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "30s1m", "1.5m", "5mins", "-5s"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("ms", "text"), [(0, "0s"), (20_000, "20s"), (5_400_000, "1h30m"), (1500, "1s500ms")]
)
def test_format(ms: int, text: str) -> None:
    assert format_duration_ms(ms) == text
    assert parse_duration_ms(text) == ms
