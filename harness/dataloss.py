"""Acknowledged-but-missing messages: the ledger's acknowledged publishes judged against the
stream as read back after heal, independently of the router.

Jepsen's queue checker is the model: lost = acknowledged − read, unexpected = read − attempted,
and the lost ones split by publish order around what was read: a *prefix* (before the first
message read back: the stream started over), a *middle* (between two that were read back: the
worst case, the stream skipped it) and a *suffix* (after the last one read back). Pure: no I/O,
so a stored run can be judged again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadMessage(_Model):
    """One message of the stream as read back: its sequence and the request id in its body."""

    seq: int
    request_id: str | None = None


class NodeState(_Model):
    """One node's view of the stream (from its monitoring endpoint), to tell where a loss is."""

    node: str
    messages: int | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    role: str = ""  # leader | replica | "" when the node did not say
    current: bool | None = None
    error: str | None = None


class Durability(_Model):
    """One node's settings that trade durability for speed (from its `/varz`)."""

    node: str
    server_name: str | None = None
    version: str | None = None
    sync_interval_s: float | None = Field(
        None, description="how often the store is fsynced (nats-server's default: 120 s)"
    )
    sync_always: bool | None = Field(None, description="every write fsynced before its ack")
    store_dir: str | None = None
    error: str | None = None

    def __str__(self) -> str:
        if self.error:
            return f"{self.node}: unknown ({self.error})"
        if self.sync_always:
            return f"{self.node}: sync always"
        interval = "?" if self.sync_interval_s is None else f"{self.sync_interval_s:g}s"
        return f"{self.node}: sync every {interval}"


class StreamReadback(_Model):
    """What reading the stream back saw; `error` set when it could not be read whole."""

    stream: str
    first_seq: int = 0
    last_seq: int = 0
    messages: list[ReadMessage] = Field(
        default_factory=list, description="as `[seq, request_id]` pairs in JSON (compact)"
    )
    nodes: list[NodeState] = Field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    read_by: Literal["ordered_consumer", "msg_get"] = Field(
        "ordered_consumer",
        description="msg_get: the ordered consumer did not deliver every sequence, so each it "
        "left out was asked of the stream leader (STREAM.MSG.GET); `note` says how many",
    )
    note: str | None = None

    @field_serializer("messages", when_used="json")
    def _pairs(self, messages: list[ReadMessage]) -> list[tuple[int, str | None]]:
        return [(m.seq, m.request_id) for m in messages]

    @field_validator("messages", mode="before")
    @classmethod
    def _from_pairs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                {"seq": v[0], "request_id": v[1]} if isinstance(v, list | tuple) else v
                for v in value
            ]
        return value


@dataclass(frozen=True)
class Published:
    """One publish the workload attempted, in publish order; `seq` is set when it was acked."""

    request_id: str
    seq: int | None


@dataclass(frozen=True)
class History:
    """A run's publishes in publish order, and its request-id prefix (`tag`)."""

    tag: str | None
    published: list[Published]


class SeqRange(_Model):
    first: int
    last: int

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


class NodeLoss(_Model):
    """What one node's own view of the stream lacks of the acknowledged sequences: those
    outside its first..last sequence (a replica behind, or one whose store lost its tail)."""

    node: str
    role: str = ""
    current: bool | None = None
    messages: int | None = None
    lacks: list[SeqRange] = Field(default_factory=list)
    lacking: int = 0
    holes: int | None = Field(
        None,
        description="sequences inside its first..last it does not hold (deleted or lost): a "
        "damaged store keeps its last sequence but not the messages",
    )
    error: str | None = None


class LossReport(_Model):
    """The verdict's input on data loss: counts, the lost ids by position, their sequences."""

    stream: str
    acked: int
    read: int
    lost: int
    lost_prefix: list[str] = Field(default_factory=list)
    lost_middle: list[str] = Field(default_factory=list)
    lost_suffix: list[str] = Field(default_factory=list)
    lost_ranges: list[SeqRange] = Field(default_factory=list)
    recovered: int = Field(0, description="read back although the publish was not acknowledged")
    unexpected: int = Field(0, description="read back but never published by this run")
    duplicated: int = Field(0, description="request ids stored at more than one sequence")
    gaps: list[SeqRange] = Field(
        default_factory=list, description="sequences inside the stream's range not read back"
    )
    nodes: list[NodeLoss] = Field(
        default_factory=list, description="per node, the acknowledged sequences it lacks"
    )
    error: str | None = None

    @property
    def evaluable(self) -> bool:
        return self.error is None


def seq_ranges(seqs: Iterable[int]) -> list[SeqRange]:
    """Sorted sequences folded into inclusive ranges: 3,4,5,9 → 3-5, 9."""
    ranges: list[SeqRange] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1].last + 1:
            ranges[-1] = SeqRange(first=ranges[-1].first, last=seq)
        else:
            ranges.append(SeqRange(first=seq, last=seq))
    return ranges


def judge_loss(
    published: Sequence[Published], readback: StreamReadback, *, tag: str | None = None
) -> LossReport:
    """Lost, recovered, unexpected and duplicated messages of one run's stream.

    `published` is every attempt in publish order; `tag` is the run's request-id prefix, so
    another run's messages in the same stream are neither ours nor unexpected.
    """
    if readback.error is not None:
        return LossReport(
            stream=readback.stream,
            acked=sum(1 for p in published if p.seq is not None),
            read=len(readback.messages),
            lost=0,
            error=f"the stream could not be read back: {readback.error}",
        )
    attempted = {p.request_id for p in published}
    acked = [p for p in published if p.seq is not None]
    acked_ids = {p.request_id for p in acked}
    read_ids: dict[str, int] = {}
    duplicated = unexpected = 0
    for message in readback.messages:
        rid = message.request_id
        if rid is None or (tag and not rid.startswith(tag + "-")):
            continue
        if rid not in attempted:
            unexpected += 1
        elif rid in read_ids:
            duplicated += 1
        else:
            read_ids[rid] = message.seq

    order = {p.request_id: i for i, p in enumerate(published)}
    read_positions = [order[rid] for rid in read_ids]
    first_read = min(read_positions, default=None)
    last_read = max(read_positions, default=None)
    prefix: list[str] = []
    middle: list[str] = []
    suffix: list[str] = []
    lost_seqs: list[int] = []
    for p in acked:
        if p.request_id in read_ids:
            continue
        lost_seqs.append(p.seq or 0)
        position = order[p.request_id]
        if first_read is None or last_read is None or position > last_read:
            suffix.append(p.request_id)
        elif position < first_read:
            prefix.append(p.request_id)
        else:
            middle.append(p.request_id)

    acked_seqs = [p.seq for p in acked if p.seq is not None]
    seen = {m.seq for m in readback.messages}
    span = range(readback.first_seq, readback.last_seq + 1) if readback.last_seq else range(0)
    return LossReport(
        stream=readback.stream,
        acked=len(acked),
        read=len(read_ids),
        lost=len(prefix) + len(middle) + len(suffix),
        lost_prefix=prefix,
        lost_middle=middle,
        lost_suffix=suffix,
        lost_ranges=seq_ranges(lost_seqs),
        recovered=sum(1 for rid in read_ids if rid not in acked_ids),
        unexpected=unexpected,
        duplicated=duplicated,
        gaps=seq_ranges(s for s in span if s not in seen),
        nodes=[node_loss(n, acked_seqs) for n in readback.nodes],
    )


def node_loss(node: NodeState, acked_seqs: Sequence[int]) -> NodeLoss:
    """The acknowledged sequences outside the node's first..last (unknown when it did not
    say: a node's monitoring endpoint gives its range, not which sequences it holds)."""
    loss = NodeLoss(
        node=node.node,
        role=node.role,
        current=node.current,
        messages=node.messages,
        error=node.error,
    )
    if node.error is not None or node.last_seq is None:
        return loss
    first = node.first_seq or 0
    lacking = [s for s in acked_seqs if s < first or s > node.last_seq]
    holes = None
    if node.messages is not None and node.last_seq >= first:
        holes = max(0, node.last_seq - max(first, 1) + 1 - node.messages)
    return loss.model_copy(
        update={"lacks": seq_ranges(lacking), "lacking": len(lacking), "holes": holes}
    )


class AlertFiring(_Model):
    """A contract alert seen firing, and when first."""

    alert: str
    at: float


class DataLossOutcome(_Model):
    """A scenario's data-loss outcome, first-class beside its verdict: how many acknowledged
    messages the stream lost after heal, and whether any contract alert fired before the final
    drain ended. Loss that no alert noticed is *silent* data loss."""

    judged: bool = Field(description="the stream was read back whole and judged")
    lost: int = 0
    lost_ranges: list[SeqRange] = Field(default_factory=list)
    acked: int = 0
    read: int = 0
    duplicated: int = 0
    unexpected: int = 0
    cutoff: float | None = Field(None, description="alerts count when firing before this")
    alerts_fired: list[AlertFiring] = Field(default_factory=list)
    silent: bool = Field(False, description="lost > 0 and no contract alert fired")
    durability: list[Durability] = Field(default_factory=list)
    error: str | None = None

    @property
    def noticed(self) -> bool:
        return bool(self.alerts_fired)

    def headline(self) -> str:
        """One line for the run summary and the report's top."""
        if not self.judged:
            return f"data loss not judged: {self.error}"
        if not self.lost:
            return f"no data loss ({self.read} of {self.acked} acknowledged read back)"
        ranges = ", ".join(str(r) for r in self.lost_ranges[:8])
        more = " …" if len(self.lost_ranges) > 8 else ""
        what = f"{self.lost} acknowledged message(s) lost (seq {ranges}{more})"
        if self.silent:
            return f"SILENT DATA LOSS: {what}; no contract alert fired"
        if not self.alerts_fired:
            return f"data loss: {what}; whether an alert fired is unknown: {self.error}"
        fired = ", ".join(sorted({a.alert for a in self.alerts_fired}))
        return f"data loss: {what}; noticed by {fired}"


def outcome(
    report: LossReport | None,
    firings: Iterable[AlertFiring],
    *,
    cutoff: float | None,
    durability: Sequence[Durability] = (),
) -> DataLossOutcome:
    """The scenario's outcome from the loss report and every contract alert seen firing: an
    alert counts when it first fired before `cutoff` (the end of the final drain)."""
    fired: dict[str, float] = {}
    for f in firings:
        if cutoff is None or f.at <= cutoff:
            fired[f.alert] = min(f.at, fired.get(f.alert, f.at))
    alerts = [AlertFiring(alert=a, at=t) for a, t in sorted(fired.items(), key=lambda x: x[1])]
    if report is None or report.error is not None:
        return DataLossOutcome(
            judged=False,
            cutoff=cutoff,
            alerts_fired=alerts,
            durability=list(durability),
            error=report.error if report else "no data-loss check ran",
        )
    return DataLossOutcome(
        judged=True,
        lost=report.lost,
        lost_ranges=report.lost_ranges,
        acked=report.acked,
        read=report.read,
        duplicated=report.duplicated,
        unexpected=report.unexpected,
        cutoff=cutoff,
        alerts_fired=alerts,
        silent=report.lost > 0 and not alerts,
        durability=list(durability),
    )
