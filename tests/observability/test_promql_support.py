"""The PromQL name extractor the contract checks rely on: it must neither miss nor invent names."""

from __future__ import annotations

import pytest

from harness.promql import threshold

from ._support import contract_family, grafana_to_promql, metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum(rate(router_dlq_total[5m])) > 0.1", {"router_dlq_total"}),
        (
            'sum by (reason, le) (rate(a_total{reason=~"x|y", le="1"}[$__rate_interval]))',
            {"a_total"},
        ),
        ("sum(rate(a_total[5m])) by (source) / on(instance) group_left(x) b", {"a_total", "b"}),
        ("histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m]))) > 2", {"h_bucket"}),
        ("topk(10, sum by (tenant_id) (rate(c_total[24h])))", {"c_total"}),
        ("max without (state) (connection_status) < 1", {"connection_status"}),
        ("(sum(rate(x_total[5m])) or vector(0)) + y offset 5m", {"x_total", "y"}),
        ("a and bool b unless c", {"a", "b", "c"}),
        ('{__name__="named"} + d', {"named", "d"}),
        ("max_over_time(g[30m:1m]) > 1e3", {"g"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_grafana_variables_become_durations() -> None:
    assert grafana_to_promql("rate(x[$__rate_interval])") == "rate(x[1m])"
    assert grafana_to_promql("x offset $__range") == "x offset 1h"


def test_histogram_series_map_to_their_family() -> None:
    contract = {"h_seconds": {"type": "histogram"}, "c_total": {"type": "counter"}}
    assert contract_family("h_seconds_bucket", contract) == "h_seconds"
    assert contract_family("h_seconds_count", contract) == "h_seconds"
    assert contract_family("c_total", contract) == "c_total"
    assert contract_family("c_total_count", contract) is None
    assert contract_family("unknown_total", contract) is None


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sum(rate(router_dlq_total[5m])) > 0.1", (">", 0.1)),
        ("(a + (b or vector(0))) > 0", (">", 0.0)),
        ("max without (state) (s) < 1", ("<", 1.0)),
        ("q >= 1e3", (">=", 1000.0)),
        ("x > bool 2", (">", 2.0)),
        ('sum(rate(a{le=">1"}[5m])) > sum(rate(b[5m]))', None),  # two series compared
        ("histogram_quantile(0.99, sum by (le) (rate(h[5m]))) > 2", (">", 2.0)),
        ("(x > 5) and y", None),  # the comparison is not the outermost one
        ("a or b > 3", None),  # `or` is outermost: the threshold holds for b only
    ],
)
def test_threshold(expr: str, expected: tuple[str, float] | None) -> None:
    assert threshold(expr) == expected
