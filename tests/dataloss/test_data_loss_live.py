"""Acknowledged messages really lost by a real nats-server, and reported as data loss.

A nats-server with JetStream's default fsync interval (`sync_interval: 2m`, said explicitly)
stores 2000 acknowledged publishes. Then:
- SIGKILL and restart: the server's writes sit in the OS page cache, which outlives the
  process, so nothing is lost (only a power failure or a kernel crash would drop what was not
  fsynced; a test cannot cause one);
- stopped, its newest block file truncated to half, restarted: the acknowledged tail is gone,
  and the data-loss judge reports it, suffix by suffix, with the missing sequence range, as
  silent loss when no alert fired. This is the damaged-storage class of the Jepsen analysis
  of NATS 2.12.1, on a single node.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import nats
import pytest

from harness.checks.base import JudgeContext
from harness.checks.data_loss import DataLossCheck, DataLossEvidence, scenario_outcome
from harness.dataloss import Published, judge_loss
from harness.evidence.record import CheckResult, ScenarioResult
from harness.readback import durability, node_states, read_stream
from harness.stack.binaries import find_binary
from harness.stack.ports import free_port

pytestmark = pytest.mark.live

N = 2000
STREAM = "LOSS"


class Server:
    """One nats-server process with a config file (the local stack's has no sync setting)."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.port, self.monitor = free_port(), free_port()
        self.store = directory / "js"
        self.conf = directory / "nats.conf"
        self.conf.write_text(
            f"port: {self.port}\nhttp_port: {self.monitor}\nserver_name: loss-1\n"
            f'jetstream {{ store_dir: "{self.store}", sync_interval: "2m" }}\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitors(self) -> dict[str, str]:
        return {"loss-1": f"http://127.0.0.1:{self.monitor}"}

    def start(self) -> None:
        log = (self.dir / "nats.log").open("ab")
        self.proc = subprocess.Popen(
            [find_binary("nats-server"), "-c", str(self.conf)], stdout=log, stderr=log
        )
        anyio.run(self._ready)

    async def _ready(self) -> None:
        deadline = time.monotonic() + 15
        while True:
            try:
                nc = await nats.connect(self.url, max_reconnect_attempts=0, connect_timeout=1)
                await nc.jetstream().account_info()
                await nc.close()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await anyio.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        self.proc.wait(timeout=15)
        self.proc = None

    def blocks(self) -> list[Path]:
        return sorted((self.store / "jetstream").glob(f"*/streams/{STREAM}/msgs/*.blk"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    s.start()
    try:
        yield s
    finally:
        if s.proc is not None:
            s.stop(signal.SIGKILL)


async def _publish(url: str) -> list[Published]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=STREAM, subjects=["loss.x"])
        published = []
        for i in range(1, N + 1):
            rid = f"dl-{i:05d}"
            ack = await js.publish("loss.x", json.dumps({"request_id": rid}).encode())
            published.append(Published(rid, ack.seq))
        return published
    finally:
        await nc.close()


def _read(server: Server) -> DataLossEvidence:
    async def read() -> DataLossEvidence:
        back = await read_stream([server.url], STREAM, idle=1.0)
        back.nodes = await node_states(server.monitors, STREAM)
        return DataLossEvidence(readback=back, durability=await durability(server.monitors))

    return anyio.run(read)


def test_sigkill_after_acks_loses_nothing_the_page_cache_keeps_it(server: Server) -> None:
    published = anyio.run(_publish, server.url)
    server.stop(signal.SIGKILL)
    server.start()
    observed = _read(server)
    assert observed.durability[0].sync_interval_s == 120.0
    assert observed.durability[0].sync_always is False
    assert observed.readback is not None
    report = judge_loss(published, observed.readback, tag="dl")
    assert (report.acked, report.read, report.lost) == (N, N, 0), report.lost_ranges


@pytest.mark.parametrize("cut", ["at_a_record_boundary", "through_a_record"])
def test_truncated_block_file_loses_the_acknowledged_tail(server: Server, cut: str) -> None:
    published = anyio.run(_publish, server.url)
    server.stop()  # a clean stop: everything flushed, then the storage is damaged
    blocks = server.blocks()
    assert len(blocks) == 1, f"one block file expected under {server.store}: {blocks}"
    newest = blocks[-1]
    size = newest.stat().st_size
    record = size // N  # every record the same size: the request ids are the same length
    assert record * N == size, (size, N)
    keep = size // 2 + (0 if cut == "at_a_record_boundary" else record // 2)
    with newest.open("r+b") as f:
        f.truncate(keep)
    server.start()
    observed = _read(server)
    observed.tag = "dl"
    observed.published = [(p.request_id, p.seq) for p in published]
    judged = DataLossCheck.judge(observed, JudgeContext())
    report = judged.evidence.report
    assert judged.status == "fail", judged.summary
    assert report is not None and 0 < report.lost < N
    assert report.lost_prefix == [] and report.lost_middle == []
    first_lost = N - report.lost + 1
    assert [str(r) for r in report.lost_ranges] == [f"{first_lost}-{N}"]
    assert f"seq {first_lost}-{N}" in judged.summary
    assert report.lost == N // 2
    # the node's own view (/jsz): it keeps its last sequence (from the index a clean stop
    # wrote), not the messages: holes inside its range, wherever the cut fell
    node = report.nodes[0]
    assert (node.node, node.role, node.error) == ("loss-1", "leader", None), node
    assert (node.lacking, node.holes) == (0, report.lost), node
    assert f"node loss-1 holds {report.lost} fewer message(s)" in judged.summary
    # beside the verdict: lost with no alert at all, so silent
    result = ScenarioResult(
        scenario_id="DL-LIVE",
        base_id="DL-LIVE",
        title="truncated block file",
        run_id="live",
        checks=[
            CheckResult(
                name="data loss",
                kind="data_loss",
                status=judged.status,
                summary=judged.summary,
                evidence=judged.evidence,
            )
        ],
    )
    found = scenario_outcome(result)
    assert found is not None and found.silent and found.lost == report.lost
    print(f"\ntruncated {newest.name} {size} → {keep} bytes: {found.headline()}; {node}")
