"""A cluster node paused (SIGSTOP) and continued (SIGCONT) on heal: the node that comes back
after longer than the election timeout still believes what it believed when it stopped.

The node is chosen by role when the fault is applied and journaled (with its pid) before the
signal, so `harness heal` continues the very node a killed run left stopped.
"""

from __future__ import annotations

import os
import signal
from typing import Any, ClassVar

from harness.faults import cluster
from harness.faults.base import FaultNotInEffect, FaultStillPresent
from harness.specs.faults import NodePauseFault

WHOLE_WITHIN = 20.0


class NodePauseDriver(cluster.LocalNodeDriver):
    records_pid = True
    kind = "node_pause"
    spec_model = NodePauseFault
    through_toxiproxy = False
    timeout_floor: ClassVar[float] = 30.0
    spec: NodePauseFault

    async def apply(self) -> None:
        os.killpg(self.state["pid"], signal.SIGSTOP)

    async def read_back(self) -> dict[str, Any]:
        node = self.state["node"]
        state = cluster.node_state(self.ctx, node)
        if state != "T":
            raise FaultNotInEffect(f"node {node} pid {self.state['pid']} state {state}, not T")
        return {
            "node": node,
            "role": self.spec.node,
            "stream": self.spec.stream,
            "pid": self.state["pid"],
            "proc_state": state,
            "before": self.state.get("before"),
        }

    async def remove(self) -> None:
        cluster.continue_node(self.ctx, self.state["node"])

    async def prove_gone(self) -> dict[str, Any]:
        node = self.state["node"]
        state = cluster.node_state(self.ctx, node)
        if state in (None, "T"):
            raise FaultStillPresent(f"node {node} pid {self.state['pid']} state {state}")
        snap, problems = await cluster.wait_whole(self.ctx, WHOLE_WITHIN)
        if problems:
            raise FaultStillPresent(
                f"node {node} continued, cluster not whole: {'; '.join(problems)}"
            )
        return {"node": node, "proc_state": state, "cluster": snap.facts()}

    async def fallback(self) -> None:
        await cluster.revive_all(self.ctx, 15.0)
