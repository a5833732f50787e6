"""Wire-less stand-ins for API tests: a run function with `runner.execute`'s signature that
walks the phases on a timer (or holds in one until released) and writes real evidence files,
and the files a service needs (target, scenarios, config, tokens)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from harness.config import Target
from harness.contract import Contract
from harness.evidence.bundle import new_record, write_evidence
from harness.evidence.junit import write_junit
from harness.evidence.record import PHASES, CheckResult, Phase, RunRecord, ScenarioResult
from harness.scenario import Scenario
from harness.service.settings import ServiceSettings
from tests.run.cli import quick_toxic

ADMIN = "admin-secret-0001"
OPERATOR = "operator-secret-01"
READER = "reader-secret-0001"
TOKENS = f"root:{ADMIN}:admin,ops:{OPERATOR}:operator,viewer:{READER}:read"

TARGET = """\
name: {name}
kind: external
nats_url: nats://127.0.0.1:1
toxiproxy_url: http://127.0.0.1:1
prometheus_url: http://127.0.0.1:1
alertmanager_url: http://127.0.0.1:1
proxies:
  router_nats: {{}}
"""


class FakeRunner:
    """`runner.execute` without a wire: phases take `phase_s`; with `hold` set, the run waits
    in the inject phase until the event is set (a run "stuck" mid-fault)."""

    def __init__(self, verdict: str = "passed", phase_s: float = 0.01):
        self.verdict = verdict
        self.phase_s = phase_s
        self.hold: anyio.Event | None = None
        self.stubborn = False  # the hold ignores cancellation: a run stuck in a phase
        self.calls: list[dict[str, Any]] = []

    async def __call__(
        self,
        scenarios: list[Scenario],
        targets: list[Target],
        contract: Contract,
        out_dir: Path,
        *,
        started_by: str = "",
        run_id: str | None = None,
        on_phase: Callable[[str, Phase], None] | None = None,
        on_result: Callable[[ScenarioResult], None] | None = None,
    ) -> RunRecord:
        self.calls.append({"scenarios": [s.id for s in scenarios], "targets": targets})
        record = new_record(run_id or "fake", targets[0], contract, started_by)
        try:
            for scenario in scenarios:
                for phase in PHASES[:-1]:
                    if on_phase:
                        on_phase(scenario.id, phase)
                    if phase == Phase.INJECT and self.hold is not None:
                        with anyio.CancelScope(shield=self.stubborn):
                            await self.hold.wait()
                    await anyio.sleep(self.phase_s)
                result = ScenarioResult(
                    scenario_id=scenario.id,
                    base_id=scenario.base_id,
                    title=scenario.title,
                    run_id=record.run_id,
                    target=targets[0].name,
                    verdict=self.verdict,  # type: ignore[arg-type]
                    reason="" if self.verdict == "passed" else "a check said no",
                    ended_at=time.time(),
                    checks=[
                        CheckResult(
                            name="delivery", kind="delivery", status="pass", summary="nothing lost"
                        )
                    ],  # fmt: skip
                )
                record.scenarios.append(result)
                write_evidence(out_dir, record)
                if on_result:
                    on_result(result)
        except anyio.get_cancelled_exc_class():
            record.interrupted = True
            write_evidence(out_dir, record)
            raise
        write_junit(out_dir, record)
        write_evidence(out_dir, record)
        return record


def service_files(
    base: Path, *, targets: tuple[str, ...] = ("staging-a",), schedules: str = ""
) -> Path:
    """Scenarios, target files and a config file under `base`; the config file's path."""
    scenarios = base / "scenarios"
    scenarios.mkdir(parents=True, exist_ok=True)
    for sid in ("QUICK-001", "QUICK-002"):
        (scenarios / f"{sid.lower()}.yaml").write_text(quick_toxic(sid, delivery=True))
    lines = [f"scenarios: {scenarios}", f"run_dir: {base / 'no-local-stack'}", "targets:"]
    for name in targets:
        path = base / f"{name}.yaml"
        path.write_text(TARGET.format(name=name))
        lines.append(f"  - {path}")
    if schedules:
        (base / "schedules.yaml").write_text(schedules)
        lines.append(f"schedules: {base / 'schedules.yaml'}")
    config = base / "service.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def settings_for(base: Path, config: Path, **overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "data_dir": base / "data",
        "config_file": config,
        "tokens": TOKENS,
        "write_reports": False,
        "scheduler_tick": 0.05,
    }
    return ServiceSettings(**{**values, **overrides})


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
