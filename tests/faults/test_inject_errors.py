"""Whatever goes wrong while injecting is a FaultApplyError naming the step, so the scenario
fails on its fault; a read-back the API did not answer once is asked again."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from harness.errors import ToxiproxyError
from harness.faults.base import FaultDriver
from harness.faults.journal import Journal
from harness.faults.lifecycle import FaultApplyError, FaultRunner

CTX = SimpleNamespace(target=SimpleNamespace(name="t"))


class Flaky(FaultDriver):
    kind = "flaky"

    def __init__(self, *, prepare_error: Exception | None = None, silent_reads: int = 0) -> None:
        super().__init__(SimpleNamespace(model_dump=lambda mode: {}), CTX, "k")  # type: ignore[arg-type]
        self.prepare_error = prepare_error
        self.silent_reads = silent_reads
        self.reads = 0

    async def prepare(self) -> None:
        if self.prepare_error is not None:
            raise self.prepare_error

    async def apply(self) -> None:
        return

    async def read_back(self) -> dict[str, Any]:
        self.reads += 1
        if self.reads <= self.silent_reads:
            raise ToxiproxyError("GET http://127.0.0.1:1/proxies/p/toxics: ReadTimeout")
        return {"in_effect": True}

    async def remove(self) -> None:
        return

    async def prove_gone(self) -> dict[str, Any]:
        return {}


def inject(tmp_path: Path, driver: Flaky, within: float = 5.0) -> dict[str, Any]:
    runner = FaultRunner(CTX, Journal(tmp_path / "j.json"))  # type: ignore[arg-type]
    return anyio.run(lambda: runner.inject(driver, read_back_within=within))


def test_a_read_back_the_api_did_not_answer_is_asked_again(tmp_path: Path) -> None:
    driver = Flaky(silent_reads=2)
    assert inject(tmp_path, driver) == {"in_effect": True}
    assert driver.reads == 3


def test_a_read_back_never_answered_is_a_fault_apply_error(tmp_path: Path) -> None:
    with pytest.raises(FaultApplyError, match="flaky k: read-back: .*ReadTimeout"):
        inject(tmp_path, Flaky(silent_reads=10**6), within=0.3)


def test_a_prepare_that_raises_is_a_fault_apply_error(tmp_path: Path) -> None:
    with pytest.raises(FaultApplyError, match="flaky k: could not prepare: boom"):
        inject(tmp_path, Flaky(prepare_error=RuntimeError("boom")))
    assert Journal(tmp_path / "j.json").entries() == []  # nothing journaled, nothing applied


def test_the_heal_bound_covers_removal_fallback_and_both_read_backs(tmp_path: Path) -> None:
    runner = FaultRunner(CTX, Journal(tmp_path / "j.json"), timeout=10)  # type: ignore[arg-type]
    assert runner.heal_bound(Flaky()) == 40.0
    slow = Flaky()
    slow.timeout_floor = 40.0  # type: ignore[attr-defined]
    assert runner.heal_bound(slow) == 160.0
