"""A cluster node killed (SIGKILL) and, on heal, started again with the same config and store.

The node is chosen by role when the fault is applied (the stream leader, a follower, the meta
leader, resolved from every node's `/jsz`) and recorded in the journal before the signal, so
`harness heal` restarts the very node a killed run took down.
"""

from __future__ import annotations

import os
import signal
from typing import Any, ClassVar

from harness.faults import cluster
from harness.faults.base import FaultNotInEffect, FaultStillPresent
from harness.specs.faults import NodeKillFault

RESTART_WAIT = 15.0
WHOLE_WITHIN = 20.0


class NodeKillDriver(cluster.LocalNodeDriver):
    records_pid = True
    kind = "node_kill"
    spec_model = NodeKillFault
    through_toxiproxy = False
    timeout_floor: ClassVar[float] = 30.0
    spec: NodeKillFault

    async def apply(self) -> None:
        node = self.state["node"]
        stack = cluster.local_stack(self.ctx)
        os.killpg(self.state["pid"], signal.SIGKILL)
        stack.stop_component(cluster.component(node))  # reap it, prove it gone

    async def read_back(self) -> dict[str, Any]:
        node = self.state["node"]
        if cluster.node_alive(self.ctx, node):
            raise FaultNotInEffect(f"node {node} (pid {self.state['pid']}) still runs")
        snap = await cluster.snapshot(self.ctx)
        if node not in snap.errors:
            raise FaultNotInEffect(f"node {node} killed but its monitoring port still answers")
        return {
            "node": node,
            "role": self.spec.node,
            "stream": self.spec.stream,
            "pid": self.state["pid"],
            "before": self.state.get("before"),
            "after": snap.facts(),
        }

    async def remove(self) -> None:
        await cluster.start_node(self.ctx, self.state["node"], RESTART_WAIT)

    async def prove_gone(self) -> dict[str, Any]:
        node = self.state["node"]
        if not cluster.node_alive(self.ctx, node):
            raise FaultStillPresent(f"node {node} is not running")
        snap, problems = await cluster.wait_whole(self.ctx, WHOLE_WITHIN)
        if problems:
            raise FaultStillPresent(
                f"node {node} restarted, cluster not whole: {'; '.join(problems)}"
            )
        return {"node": node, "pid": cluster.node_pid(self.ctx, node), "cluster": snap.facts()}

    async def fallback(self) -> None:
        await cluster.revive_all(self.ctx, RESTART_WAIT)
