"""The launcher of the broken runs (launcher.py), without starting a stack: only the
runs the selected tests use are launched, and a run that fails says why."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.broken import conftest
from tests.broken.launcher import FIXTURES, BrokenRuns, needed, port_range
from tests.broken.runs import SPECS


def test_every_run_has_its_module_fixture() -> None:
    assert set(FIXTURES.values()) == set(SPECS) == {"a", "b", "c", "cluster"}
    for fixture in FIXTURES:
        assert callable(getattr(conftest, fixture)), fixture


def test_only_the_runs_the_selected_tests_use_are_launched() -> None:
    items = [
        SimpleNamespace(fixturenames=["broken_runs", "broken_cluster", "breakage"]),
        SimpleNamespace(fixturenames=["broken_runs", "broken_a"]),
        SimpleNamespace(fixturenames=["tmp_path"]),
        SimpleNamespace(),  # an item that is not a function (no fixtures)
    ]
    assert needed(items) == ["a", "cluster"]
    assert needed([]) == []


def test_each_run_has_its_own_ports_outside_the_ephemeral_range() -> None:
    spans = []
    for name in SPECS:
        low, high = (int(p) for p in port_range(name).split("-"))
        spans.append(range(low, high + 1))
    taken = [p for span in spans for p in span]
    assert len(taken) == len(set(taken))  # disjoint
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    first = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    assert min(taken) >= 1024 and max(taken) < first


def test_a_run_that_fails_says_why(tmp_path: Path) -> None:
    runs = BrokenRuns(tmp_path)
    runs.launch(["no-such-run"])
    why = r"(?s)broken run no-such-run failed \(exit 1\).*KeyError: 'no-such-run'"
    with pytest.raises(AssertionError, match=why):
        runs.wait("no-such-run")
    runs.stop("no-such-run")  # already ended: nothing to do
