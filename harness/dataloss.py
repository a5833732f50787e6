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

from pydantic import BaseModel, ConfigDict, Field


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


class StreamReadback(_Model):
    """What reading the stream back saw; `error` set when it could not be read whole."""

    stream: str
    first_seq: int = 0
    last_seq: int = 0
    messages: list[ReadMessage] = Field(default_factory=list)
    nodes: list[NodeState] = Field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Published:
    """One publish the workload attempted, in publish order; `seq` is set when it was acked."""

    request_id: str
    seq: int | None


class SeqRange(_Model):
    first: int
    last: int

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


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
    )
