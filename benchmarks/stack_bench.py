"""Time `harness up --detach` until every component is ready, and `down` until all are gone.

Runs the real CLI in a subprocess, as a user would, a few times; prints figures, asserts nothing.
Goal (issue 2): ready in under 10 s on the 2-core machine.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

RUNS = int(os.environ.get("STACK_BENCH_RUNS", "3"))


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "harness", *args], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"harness {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    ups, downs = [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as run_dir:
            env = {**os.environ, "HARNESS_RUN_DIR": run_dir}
            ups.append(timed(["up", "--detach", "--slots", "1"], env))
            downs.append(timed(["down"], env))
    print(f"stack up --detach until ready: runs={RUNS}")
    print(f"  median {statistics.median(ups):.2f} s  min {min(ups):.2f} s  max {max(ups):.2f} s")
    print("  goal < 10 s: " + ("met" if statistics.median(ups) < 10 else "NOT met"))
    print(f"stack down until every process gone: runs={RUNS}")
    print(
        f"  median {statistics.median(downs):.2f} s  min {min(downs):.2f} s  max {max(downs):.2f} s"
    )


if __name__ == "__main__":
    main()
