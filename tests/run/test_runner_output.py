"""`harness run` prints text from files and flags verbatim (through harness.output): a scenario's
reason, a refused run's error and an operator's note may hold `[...]` and `:name:` that Rich
markup or emoji codes would eat or restyle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from harness import output, runner
from harness.errors import HarnessError
from harness.evidence.record import RunRecord, ScenarioResult

MARKUP = "regex '^[a-z]*$' [bold red]not markup[/] :smile: [/]"


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setattr(output.err, "width", 4000)  # one line a row, whatever the terminal
    return capsys


def test_summary_shows_reasons_and_notes_verbatim(stderr: Any, tmp_path: Path) -> None:
    result = ScenarioResult(
        scenario_id="S1", base_id="S1", title="t", run_id="r", verdict="failed", reason=MARKUP
    )
    record = RunRecord(
        run_id="r",
        target={},
        profile={},
        time_compression=1,
        scenarios=[result],
        unproven_forbidden={"[b]Alert[/b]": ["S1"]},
        forgotten=[{"key": "k[0]", "by": "ops:smile:", "reason": MARKUP}],
    )
    runner._summary(record, tmp_path / "run[bold]1")
    err = stderr.readouterr().err
    assert f"run → {tmp_path}/run[bold]1" in err
    assert f"│ {MARKUP} " in err  # the reason cell
    assert "│ S1 " in err and "│ failed " in err
    assert "unproven in this run (forbidden, but no scenario here showed they can fire): " in err
    assert "[b]Alert[/b] (S1)" in err
    assert f"forgotten by an operator: k[0] by ops:smile:: {MARKUP}" in err


def test_a_refused_run_prints_its_error_verbatim(
    stderr: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def refuse(*args: Any, **kwargs: Any) -> None:
        raise HarnessError(f"scenarios/x.yaml:3: {MARKUP}")

    monkeypatch.setattr(runner, "execute", refuse)
    code = anyio.run(
        lambda: runner.run_scenarios([], [], None, tmp_path / "out", report=False)  # type: ignore[arg-type]
    )
    assert code == 1
    assert f"error: scenarios/x.yaml:3: {MARKUP}\n" in stderr.readouterr().err
