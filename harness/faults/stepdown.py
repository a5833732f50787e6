"""A leader stepdown through the JetStream API: a stream's leader
(`$JS.API.STREAM.LEADER.STEPDOWN.<stream>`) or the meta group's (`$JS.API.META.LEADER.STEPDOWN`,
answered on the system account only).

A stepdown is instantaneous: there is nothing to undo. It is journaled all the same, and its heal
is a no-op proven by a leader existing again (the group elected one) and the cluster whole.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import nats

from harness.faults import cluster
from harness.faults.base import FaultDriver, FaultNotInEffect, FaultStillPresent
from harness.specs.faults import StepdownFault

WHOLE_WITHIN = 20.0


class StepdownRefused(FaultNotInEffect):
    """The JetStream API answered the stepdown with an error."""


class StepdownDriver(FaultDriver):
    kind = "leader_stepdown"
    spec_model = StepdownFault
    through_toxiproxy = False
    timeout_floor: ClassVar[float] = 30.0
    spec: StepdownFault

    @property
    def subject(self) -> str:
        if self.spec.group == "meta":
            return "$JS.API.META.LEADER.STEPDOWN"
        return f"$JS.API.STREAM.LEADER.STEPDOWN.{self.spec.stream}"

    def _leader(self, snap: cluster.ClusterSnapshot) -> str | None:
        if self.spec.group == "meta":
            return snap.meta_leader()
        return snap.stream_leader(self.spec.stream)

    def _credentials(self) -> dict[str, str]:
        if self.spec.group != "meta":
            return {}
        system = self.ctx.target.topology.system_user
        if not system:
            raise FaultNotInEffect(
                f"a meta leader stepdown needs the system account; target {self.ctx.target.name}"
                " names no system user (topology.system_user)"
            )
        user, _, password = system.partition(":")
        return {"user": user, "password": password}

    async def capable(self) -> str | None:
        try:
            cluster.topology_nodes(self.ctx.target)
            self._credentials()
        except FaultNotInEffect as exc:
            return str(exc)
        return None

    async def prepare(self) -> None:
        snap = await cluster.snapshot(self.ctx)
        leader = self._leader(snap)
        if leader is None:
            raise cluster.NodeNotResolved(f"no {self.spec.group} leader to step down")
        self.state.update(leader_before=leader, before=snap.facts())

    async def apply(self) -> None:
        nc = await nats.connect(
            self.ctx.target.nats_servers,
            name="harness-fault",
            connect_timeout=3,
            max_reconnect_attempts=1,
            **self._credentials(),
        )
        try:
            reply = await nc.request(self.subject, b"", timeout=5)
        finally:
            await nc.close()
        answer = json.loads(reply.data or b"{}")
        self.state["answer"] = answer
        if not answer.get("success"):
            raise StepdownRefused(f"{self.subject}: {answer.get('error') or answer}")

    async def read_back(self) -> dict[str, Any]:
        snap = await cluster.snapshot(self.ctx)
        leader = self._leader(snap)
        before = self.state["leader_before"]
        if leader is None or leader == before:
            raise FaultNotInEffect(
                f"{self.spec.group} leader still {leader or 'not elected'} (was {before})"
            )
        return {
            "group": self.spec.group,
            "stream": self.spec.stream if self.spec.group == "stream" else None,
            "leader_before": before,
            "leader_after": leader,
            "answer": self.state.get("answer"),
        }

    async def remove(self) -> None:
        """Nothing to undo: the group elects a new leader by itself."""

    async def prove_gone(self) -> dict[str, Any]:
        snap, problems = await cluster.wait_whole(self.ctx, WHOLE_WITHIN)
        if self._leader(snap) is None:
            problems.insert(0, f"no {self.spec.group} leader")
        if problems:
            raise FaultStillPresent(f"after the stepdown: {'; '.join(problems)}")
        return {"leader": self._leader(snap), "cluster": snap.facts()}

    async def fallback(self) -> None:
        """Nothing a stepdown broke can be undone by hand; wake any node that is down."""
        await cluster.revive_all(self.ctx, 15.0)
