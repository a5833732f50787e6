"""What a report of a 20-scenario run costs: build seconds and the size of report.html.

The run is synthesized from real evidence (tests/report/fixtures): its scenarios replicated
under new IDs (S101, S102, …) until there are 20, each keeping every check, series and alert
timeline it had. The clock covers what `harness report` does: read evidence.json, compute the
model and the coverage matrix, draw every plot, write report.html, report.md (+ plots/) and
coverage.json. Goals: ≤ 10 s, report.html ≤ 5 MB. Figures are printed, never asserted.

    python benchmarks/report_bench.py [--scenarios 20] [--rounds 3] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from harness.report.build import write_report

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "report" / "fixtures"


def synthesize(count: int, out: Path) -> Path:
    """A run directory whose evidence.json holds `count` scenarios copied from the fixtures."""
    sources = [json.loads(f.read_text()) for f in sorted(FIXTURES.glob("*/evidence.json"))]
    record = sources[0]
    pool = [s for doc in sources for s in doc["scenarios"]]
    record["scenarios"] = []
    for i in range(count):
        scenario = json.loads(json.dumps(pool[i % len(pool)]))
        scenario["scenario_id"] = scenario["base_id"] = f"S{101 + i}"
        scenario["title"] = f"{scenario['title']} (copy {i + 1})"
        record["scenarios"].append(scenario)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evidence.json").write_text(json.dumps(record))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="plot processes [cores, ≤4]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        run = synthesize(args.scenarios, Path(tmp) / "run")
        seconds, sizes = [], []
        for round_ in range(args.rounds):
            out = Path(tmp) / f"out{round_}"
            started = time.perf_counter()
            written = write_report([run], out, workers=args.workers)
            seconds.append(time.perf_counter() - started)
            sizes.append(written.html.stat().st_size)
        plots = len(list((Path(tmp) / "out0" / "plots").glob("*.svg")))
    print(
        f"report of {args.scenarios} scenarios ({plots} plots), {args.rounds} rounds: "
        f"build median {statistics.median(seconds):.2f} s (min {min(seconds):.2f}, "
        f"max {max(seconds):.2f}; goal <= 10 s); report.html {sizes[-1] / 1e6:.2f} MB "
        f"(goal <= 5 MB)"
    )


if __name__ == "__main__":
    main()
