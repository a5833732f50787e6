"""Does watching a run disturb it? 50 concurrent status pollers during a run of the service.

Starts a local stack (one slot) and `harness serve` on it, then alternates rounds of the
same run: with nobody watching; with 50 clients polling `GET /api/runs/{id}` once a second
each (50 people with the run page open); and with 50 clients polling back to back (as fast
as answers come). Prints the API latency under load (p50/p99, requests/s) and each run's
verdict and duration beside the unwatched one (figures and ratios, never asserted). On this
2-core box the pollers, the service, the stack and the run share the cores.

    flock /tmp/harness-live.lock python benchmarks/service_bench.py [--rounds 2] [--clients 50]
        [--scenario PASS-002]

The scenarios are the service tests' own (tests/service/live.py): PASS-001 is a short latency
toxic whose delivery check must pass (about 3 s here), PASS-002 the same held ten seconds.

Measured on the shared 2-core dev box, PASS-002, 2 rounds, every run passed:
    50 pollers at 1 poll/s each: p50 1.5 ms, p99 147 ms (1300 requests); run x1.00
    50 pollers flat out (~2000 requests/s): p50 22 ms, p99 73 ms (59043 requests); run x1.18
    (the cores are saturated then: pollers, service, stack and run all share them)
Again with the gate in front of every call (token checked before the body, cached; security
headers; store reads off the event loop), PASS-002, 2 rounds, every run passed:
    50 pollers at 1 poll/s each: p50 2.8 ms, p99 108 ms (1300 requests); run x1.00
    50 pollers flat out (~2000-3100 requests/s): p50 16 ms, p99 65 ms (71995 requests); run x1.13
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import anyio
import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from harness.stack.stack import LocalStack  # noqa: E402
from tests.service.fakes import OPERATOR, READER, bearer  # noqa: E402
from tests.service.live import ServedHarness  # noqa: E402

DONE = ("passed", "failed", "error", "interrupted", "cancelled", "aborted")


async def one_run(
    url: str, scenario: str, clients: int, interval: float
) -> tuple[dict, list[float]]:
    """Start a run; with `clients` > 0 poll its status from that many clients (each waiting
    `interval` between its polls) until it ends. The run's record and each poll's latency."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        answer = await http.post(
            "/api/runs", json={"scenarios": [scenario]}, headers=bearer(OPERATOR)
        )
        answer.raise_for_status()
        run_id = answer.json()["run_id"]
        done = anyio.Event()

        # aiohttp for the pollers: one session, a connection each; httpx's pool (and 50
        # clients built at once, each with an SSL context) would add its own latency.
        pollers = aiohttp.ClientSession(
            url, connector=aiohttp.TCPConnector(limit=clients + 1), headers=bearer(READER)
        )

        async def poller() -> None:
            while not done.is_set():
                started = time.perf_counter()
                async with pollers.get(f"/api/runs/{run_id}") as response:
                    await response.read()
                    latencies.append(time.perf_counter() - started)
                    response.raise_for_status()
                await anyio.sleep(interval)

        async with pollers, anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(poller)
            while True:
                run = (await http.get(f"/api/runs/{run_id}", headers=bearer(READER))).json()
                if run["status"] in DONE:
                    done.set()
                    break
                await anyio.sleep(0.5)
        return run, latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--scenario", default="PASS-002")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="service-bench-"))
    stack = LocalStack(base / "stack")
    anyio.run(stack.up)
    served = ServedHarness(base / "served", stack.run_dir, HARNESS_SERVE_WRITE_REPORTS="false")
    try:
        served.start()
        modes = {"unwatched": (0, 0.0), "UI cadence (1 poll/s each)": (args.clients, 1.0),
                 "flat out": (args.clients, 0.0)}  # fmt: skip
        durations: dict[str, list[float]] = {m: [] for m in modes}
        latencies: dict[str, list[float]] = {m: [] for m in modes}
        for i in range(args.rounds):
            for mode, (clients, interval) in modes.items():
                run, polls = asyncio.run(one_run(served.url, args.scenario, clients, interval))
                seconds = run["ended_at"] - run["started_at"]
                durations[mode].append(seconds)
                latencies[mode] += polls
                rate = f", {len(polls)} polls ({len(polls) / seconds:.0f}/s)" if polls else ""
                print(f"round {i + 1}: {mode}: {run['status']} in {seconds:.2f}s{rate}")
        quiet = statistics.median(durations["unwatched"])
        print()
        for mode in list(modes)[1:]:
            p50, p99 = pct(latencies[mode], 50) * 1000, pct(latencies[mode], 99) * 1000
            median = statistics.median(durations[mode])
            print(f"{args.clients} pollers, {mode}: API p50 {p50:.1f} ms, p99 {p99:.1f} ms over "
                  f"{len(latencies[mode])} requests; run {median:.2f}s vs {quiet:.2f}s "
                  f"unwatched (x{median / quiet:.2f})")  # fmt: skip
    finally:
        served.stop()
        stack.down()


if __name__ == "__main__":
    main()
