"""The whole catalogue live (every scenario and boundary variant, the cluster scenarios
included): wall time with 1 slot of each topology and with the default slot mix, per-scenario
durations, and false failures over consecutive runs.

Each measurement starts a fresh local stack with the slots it needs (`harness up --detach`:
single-node slots and 3-node cluster slots beside them, its router without the fault hook and
/readyz, as the test suite runs it),
runs `harness run --all` against it, reads the run's evidence.json and stops the stack. Wall
time is the `run` command's (stack start-up is printed apart). On an unbroken stack every
verdict should be `passed`: anything else counts as a false failure. Goal: the catalogue in
≤ 7 minutes on a 2-core machine, 0 false failures in 3 consecutive default runs. Figures are
printed, never asserted.

    python benchmarks/catalogue_bench.py [--runs 3] [--slots N] [--cluster-slots N]
                                         [--skip-single] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.plan import auto_cluster_slots
from harness.stack.slots import default_slots

HARNESS = [sys.executable, "-m", "harness"]


@dataclass
class Measured:
    slots: int
    cluster_slots: int
    startup_s: float
    wall_s: float
    cpu_s: float  # the orchestrator's (`harness run`) CPU time, user + system
    durations: dict[str, float]  # scenario → seconds
    verdicts: dict[str, str]

    @property
    def failures(self) -> dict[str, str]:
        return {s: v for s, v in self.verdicts.items() if v != "passed"}


def _harness(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HARNESS, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def measure(slots: int, cluster_slots: int, work: Path) -> Measured:
    run_dir, out = work / f"stack-{slots}", work / f"run-{slots}-{time.time_ns()}"
    started = time.monotonic()
    up = _harness(
        "up", "--detach", "--slots", str(slots), "--cluster-slots", str(cluster_slots),
        "--run-dir", str(run_dir),
        # as the suite runs it: no scenario may need the router's private hook or /readyz
        "--no-router-fault-hook", "--no-router-readyz",
        timeout=300,
    )  # fmt: skip
    if up.returncode != 0:
        raise SystemExit(f"harness up --slots {slots} failed:\n{up.stderr[-2000:]}")
    startup = time.monotonic() - started
    try:
        started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        _harness("run", "--all", "--run-dir", str(run_dir), "--out", str(out), timeout=7200)
        wall, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        _harness("down", "--run-dir", str(run_dir), timeout=120)
    evidence = json.loads((out / "evidence.json").read_text())
    scenarios = evidence["scenarios"]
    return Measured(
        slots=slots,
        cluster_slots=cluster_slots,
        startup_s=startup,
        wall_s=wall,
        cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        durations={s["scenario_id"]: s["ended_at"] - s["started_at"] for s in scenarios},
        verdicts={s["scenario_id"]: s["verdict"] for s in scenarios},
    )


def _minutes(seconds: float) -> str:
    tenths = round(seconds * 10)
    return f"{tenths // 600}m{tenths % 600 / 10:04.1f}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="consecutive default-slot runs")
    parser.add_argument("--slots", type=int, default=default_slots(), help="the default to test")
    parser.add_argument(
        "--cluster-slots", type=int, help="cluster slots beside them [what --slots auto adds]"
    )
    parser.add_argument("--skip-single", action="store_true", help="skip the 1-slot run")
    parser.add_argument(
        "--keep", type=Path, help="keep each run's evidence and the stacks' logs in DIR"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="catalogue-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        cluster = (
            args.cluster_slots if args.cluster_slots is not None else auto_cluster_slots(args.slots)
        )
        single = None if args.skip_single else measure(1, 1, work)
        runs = [measure(args.slots, cluster, work) for _ in range(args.runs)]

    reference = runs[0]
    print(f"catalogue: {len(reference.verdicts)} scenarios (variants included)")
    print(f"{'scenario':12} {'seconds':>8}")
    medians = {
        s: statistics.median(r.durations.get(s, float("nan")) for r in runs)
        for s in reference.durations
    }
    for scenario in sorted(medians, key=lambda s: -medians[s]):
        print(f"{scenario:12} {medians[scenario]:8.1f}")
    print(f"sum of scenario times: {_minutes(sum(reference.durations.values()))}")
    if single is not None:
        print(
            f"1 single + 1 cluster slot: {_minutes(single.wall_s)} "
            f"(stack start {single.startup_s:.1f} s, "
            f"orchestrator CPU {single.cpu_s:.0f} s), false failures "
            f"{len(single.failures)} {single.failures or ''}"
        )
    for i, run in enumerate(runs, 1):
        print(
            f"{run.slots} + {run.cluster_slots} cluster slots, run {i}: "
            f"{_minutes(run.wall_s)} (stack start "
            f"{run.startup_s:.1f} s, orchestrator CPU {run.cpu_s:.0f} s = "
            f"{100 * run.cpu_s / run.wall_s:.0f} % of a core), false failures "
            f"{len(run.failures)} {run.failures or ''}"
        )
    median = statistics.median(r.wall_s for r in runs)
    print(f"{args.slots} slots: median {_minutes(median)} (goal ≤ 7m00.0s)")
    if single is not None:
        print(f"speed-up {args.slots} slots vs 1: ×{single.wall_s / median:.2f}")
    streak = longest = 0
    for run in runs:
        streak = 0 if run.failures else streak + 1
        longest = max(longest, streak)
    print(f"consecutive runs with 0 false failures: {longest}/{len(runs)}")


if __name__ == "__main__":
    main()
