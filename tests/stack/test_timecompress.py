"""The rule renderer: windows and `for:` divided, everything else untouched, promtool-clean."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.timecompress import compress_promql, compress_rule_file

RULES = """\
groups:
  - name: router-jetstream.rules
    interval: 30s
    rules:
      - alert: HighRedelivery
        expr: |
          sum(rate(router_jetstream_redelivery_total{reason=~"a[5m]"}[5m]))
            / sum(rate(router_jetstream_ack_total[1h30m])) > 0.1
        for: 10m
        labels: {severity: warning, service: router}
        annotations:
          summary: "Redelivery above 10% over [5m] for 10m"
      - alert: Subquery
        expr: max_over_time(sum(rate(x_total[5m]))[30m:1m]) > 0 and y offset 5m
        keep_firing_for: 90s
      - alert: NoFor
        expr: up == 0
      - record: job:x:rate5m
        expr: sum by (job) (rate(x_total[5m]))
"""


def test_windows_and_for_divided() -> None:
    out = yaml.safe_load(compress_rule_file(RULES, 30))
    group = out["groups"][0]
    assert group["interval"] == "1s"
    high, sub, nofor, record = group["rules"]
    assert "[10s]" in high["expr"] and "[3m]" in high["expr"]
    assert high["for"] == "20s"
    assert sub["expr"].startswith("max_over_time(sum(rate(x_total[10s]))[1m:2s])")
    assert sub["keep_firing_for"] == "3s"
    assert "for" not in nofor
    assert record["expr"] == "sum by (job) (rate(x_total[10s]))"


def test_everything_else_intact() -> None:
    src = yaml.safe_load(RULES)["groups"][0]["rules"]
    out = yaml.safe_load(compress_rule_file(RULES, 30))["groups"][0]["rules"]
    assert out[0]["labels"] == src[0]["labels"]
    assert out[0]["annotations"] == src[0]["annotations"]  # "[5m]" in text is not a window
    assert 'reason=~"a[5m]"' in out[0]["expr"]  # nor inside a string literal
    assert "offset 5m" in out[1]["expr"]  # offsets are not windows
    assert out[3]["record"] == "job:x:rate5m"


def test_factor_one_is_identity() -> None:
    assert compress_rule_file(RULES, 1) == RULES


def test_min_range_floor_and_never_longer_than_original() -> None:
    assert compress_promql("rate(x[1m])", 30, min_range_ms=4000) == "rate(x[4s])"
    assert compress_promql("rate(x[2s])", 30, min_range_ms=4000) == "rate(x[2s])"
    assert compress_promql("rate(x[90s])", 30) == "rate(x[3s])"


def test_factor_below_one_rejected() -> None:
    with pytest.raises(ValueError, match="≥ 1"):
        compress_promql("rate(x[5m])", 0.5)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_rendered_file_passes_promtool(tmp_path: Path) -> None:
    rendered = tmp_path / "rules.yml"
    rendered.write_text(compress_rule_file(RULES, 30, 4000))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rendered)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_longest_range_ignores_strings_and_reads_subqueries() -> None:
    from harness.timecompress import longest_range_s

    assert longest_range_s('rate(x{a="[48h]"}[5m]) / max_over_time(y[1h:1m])') == 3600.0
    assert longest_range_s("up") == 0.0
