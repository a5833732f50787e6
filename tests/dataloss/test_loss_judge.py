"""The data-loss judge on synthetic histories: what was acked against what was read back."""

from __future__ import annotations

from harness.dataloss import (
    NodeState,
    Published,
    ReadMessage,
    StreamReadback,
    judge_loss,
    seq_ranges,
)


def _history(n: int, *, unacked: frozenset[int] = frozenset()) -> list[Published]:
    return [Published(f"t-{i}", None if i in unacked else i) for i in range(1, n + 1)]


def _read(ids: list[int], *, first: int = 1, last: int | None = None) -> StreamReadback:
    messages = [ReadMessage(seq=i, request_id=f"t-{i}") for i in ids]
    return StreamReadback(
        stream="S", first_seq=first, last_seq=last or max(ids, default=0), messages=messages
    )


def test_nothing_lost_when_every_acked_message_is_read() -> None:
    report = judge_loss(_history(10), _read(list(range(1, 11))), tag="t")
    assert (report.acked, report.read, report.lost) == (10, 10, 0)
    assert report.lost_ranges == [] and report.gaps == []


def test_lost_messages_split_into_prefix_middle_suffix() -> None:
    read = [3, 4, 7, 8]
    report = judge_loss(_history(10), _read(read, last=10), tag="t")
    assert report.lost_prefix == ["t-1", "t-2"]
    assert report.lost_middle == ["t-5", "t-6"]
    assert report.lost_suffix == ["t-9", "t-10"]
    assert report.lost == 6
    assert [str(r) for r in report.lost_ranges] == ["1-2", "5-6", "9-10"]


def test_everything_lost_is_suffix_when_nothing_was_read() -> None:
    report = judge_loss(_history(3), _read([], last=0), tag="t")
    assert report.lost_suffix == ["t-1", "t-2", "t-3"] and report.lost == 3


def test_unacked_publish_read_back_is_recovered_not_lost() -> None:
    report = judge_loss(_history(4, unacked=frozenset({2})), _read([1, 2, 3, 4]), tag="t")
    assert report.lost == 0 and report.recovered == 1 and report.acked == 3


def test_an_unacked_publish_missing_is_not_loss() -> None:
    report = judge_loss(_history(4, unacked=frozenset({4})), _read([1, 2, 3]), tag="t")
    assert report.lost == 0


def test_unexpected_and_duplicated_and_foreign_messages() -> None:
    readback = _read([1, 2])
    readback.messages += [
        ReadMessage(seq=3, request_id="t-1"),  # the same request stored twice
        ReadMessage(seq=4, request_id="t-99"),  # ours by tag, never published
        ReadMessage(seq=5, request_id="other-1"),  # another run's
        ReadMessage(seq=6, request_id=None),  # not ours to judge
    ]
    report = judge_loss(_history(2), readback, tag="t")
    assert (report.duplicated, report.unexpected, report.lost) == (1, 1, 0)


def test_gaps_are_sequences_in_range_not_read() -> None:
    report = judge_loss(_history(5), _read([1, 2, 5], last=5), tag="t")
    assert [str(g) for g in report.gaps] == ["3-4"]


def test_an_unreadable_stream_is_an_error_never_zero_loss() -> None:
    readback = StreamReadback(stream="S", error="connect refused")
    report = judge_loss(_history(3), readback, tag="t")
    assert not report.evaluable and "could not be read back" in (report.error or "")


def test_seq_ranges_fold_runs() -> None:
    assert [str(r) for r in seq_ranges([9, 3, 4, 5, 5])] == ["3-5", "9"]
    assert seq_ranges([]) == []


def test_a_readback_is_kept_as_compact_pairs_and_read_back_unchanged() -> None:
    readback = _read([1, 2, 3])
    doc = readback.model_dump(mode="json")
    assert doc["messages"] == [[1, "t-1"], [2, "t-2"], [3, "t-3"]]
    assert StreamReadback.model_validate(doc) == readback
    assert StreamReadback.model_validate(readback.model_dump()) == readback


def _jsz(leader: str | None, replicas: list[dict]) -> dict:
    detail = {"name": "S", "state": {"messages": 5, "first_seq": 1, "last_seq": 5}}
    if leader is not None:
        detail["cluster"] = {"leader": leader, "replicas": replicas}
    return {"account_details": [{"stream_detail": [detail]}]}


def test_a_nodes_role_from_jsz_and_its_own_server_name() -> None:
    from harness.readback import _fill

    replicas = [{"name": "n2", "current": False}, {"name": "n3", "current": True}]
    leader, follower, single = NodeState(node="a"), NodeState(node="b"), NodeState(node="c")
    _fill(leader, _jsz("n1", replicas), "S", "n1")
    _fill(follower, _jsz("n1", replicas), "S", "n2")
    _fill(single, _jsz(None, []), "S", "solo")
    assert (leader.role, leader.messages, leader.last_seq) == ("leader", 5, 5)
    assert (follower.role, follower.current) == ("replica", False)
    assert (single.role, single.messages) == ("", 5)
    missing = NodeState(node="d")
    _fill(missing, _jsz("n1", []), "OTHER", "n1")
    assert missing.error == "the node does not hold stream OTHER"
