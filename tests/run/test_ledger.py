"""The delivery ledger's classification, exactly, with no I/O: answered, dead-lettered, lost,
not acked, duplicates, unexpected, unparsable, latency."""

from __future__ import annotations

import json

import pytest

from harness.workload import Latency, Ledger, WorkloadDriver, WorkloadSpec, request_body


def ok(request_id: str | None) -> bytes:
    return json.dumps({"ok": True, "context": {"request_id": request_id}}).encode()


def error(request_id: str) -> bytes:
    return json.dumps({"ok": False, "context": {"request_id": request_id}}).encode()


def dlq(request_id: str) -> bytes:
    return json.dumps({"request_id": request_id, "reason": "tenant_validation_failed"}).encode()


def acked(ledger: Ledger, request_id: str, kind: str, at: float = 100.0) -> None:
    entry = ledger.published(request_id, kind, at)  # type: ignore[arg-type]
    entry.acked_at = at + 0.001


def test_each_kind_reaches_its_terminal_outcome() -> None:
    ledger = Ledger()
    acked(ledger, "v", "valid")
    acked(ledger, "p", "poison")
    acked(ledger, "m", "malformed")
    ledger.reply(ok("v"), 100.25)
    ledger.reply(error("p"), 100.1)  # a poison message's error reply on each delivery
    ledger.reply(error("p"), 100.3)
    ledger.dead_letter(dlq("p"), 101.0)
    ledger.reply(error("m"), 100.5)

    assert {k: e.outcome() for k, e in ledger.entries.items()} == {
        "v": "answered",
        "p": "dead_lettered",
        "m": "answered",
    }
    s = ledger.summary()
    assert (s.published, s.acked, s.answered, s.dead_lettered, s.lost) == (
        3,
        3,
        2,
        1,
        0,
    )
    assert s.duplicate_outcomes == 0, "a poison message's error replies are not duplicates"
    assert (s.poison_published, s.poison_dead_lettered) == (1, 1)
    assert s.by_kind == {
        "valid": {"published": 1, "answered": 1},
        "poison": {"published": 1, "dead_lettered": 1},
        "malformed": {"published": 1, "answered": 1},
    }
    assert ledger.entries["v"].latency() == pytest.approx(0.25)
    assert ledger.entries["p"].latency() == pytest.approx(1.0)  # publish → DLQ
    assert ledger.settled()


def test_lost_means_acked_with_no_terminal_outcome() -> None:
    ledger = Ledger()
    acked(ledger, "v-silent", "valid")
    acked(ledger, "v-error", "valid")  # an error reply does not answer a valid request
    acked(ledger, "p-no-dlq", "poison")
    acked(ledger, "m-ok", "malformed")  # an ok reply does not answer a malformed one
    ledger.reply(error("v-error"), 101)
    ledger.reply(error("p-no-dlq"), 101)  # rejected, but never dead-lettered
    ledger.reply(ok("m-ok"), 101)

    s = ledger.summary()
    assert s.lost == 4
    assert s.lost_ids == ["m-ok", "p-no-dlq", "v-error", "v-silent"]
    assert s.answered == s.dead_lettered == 0
    assert (s.poison_published, s.poison_dead_lettered) == (1, 0)
    assert not ledger.settled()


def test_not_acked_is_not_lost_and_not_owed_an_answer() -> None:
    ledger = Ledger()
    entry = ledger.published("never-acked", "valid", 100.0)
    entry.publish_error = "TimeoutError: nats: timeout"
    acked(ledger, "fine", "valid")
    ledger.reply(ok("fine"), 100.1)
    s = ledger.summary()
    assert (s.published, s.acked, s.not_acked, s.lost) == (2, 1, 1, 0)
    assert ledger.settled(), "an unacked publish is not waited for"
    assert s.by_kind["valid"] == {"published": 2, "not_acked": 1, "answered": 1}


def test_settled_flips_once_the_last_outcome_arrives() -> None:
    ledger = Ledger()
    acked(ledger, "a", "valid")
    acked(ledger, "b", "poison")
    assert not ledger.settled()
    ledger.reply(ok("a"), 101)
    assert not ledger.settled()
    ledger.dead_letter(dlq("b"), 102)
    assert ledger.settled()


def test_duplicates_are_counted_per_message() -> None:
    ledger = Ledger()
    acked(ledger, "v3", "valid")
    acked(ledger, "v1", "valid")
    acked(ledger, "p2", "poison")
    acked(ledger, "m2", "malformed")
    for at in (101, 102, 103):
        ledger.reply(ok("v3"), at)
    ledger.reply(ok("v1"), 101)
    ledger.dead_letter(dlq("p2"), 101)
    ledger.dead_letter(dlq("p2"), 102)
    ledger.reply(error("m2"), 101)
    ledger.reply(error("m2"), 102)
    ledger.reply(ok("v1"), 103)  # late duplicate of v1 too

    assert {k: e.duplicates() for k, e in ledger.entries.items()} == {
        "v3": 2,
        "v1": 1,
        "p2": 1,
        "m2": 1,
    }
    s = ledger.summary()
    assert s.duplicate_outcomes == 5
    assert s.messages_with_duplicates == 4
    assert s.max_duplicates_per_message == 2
    assert s.lost == 0 and s.answered == 3 and s.dead_lettered == 1
    assert ledger.entries["v3"].latency() == pytest.approx(1.0), "latency is to the first reply"


def test_unexpected_and_unparsable_messages() -> None:
    ledger = Ledger()
    acked(ledger, "mine", "valid")
    ledger.reply(ok("someone-elses"), 101)
    ledger.reply(ok(None), 101)  # a reply with no request id
    ledger.reply(json.dumps({"ok": True}).encode(), 101)
    ledger.dead_letter(dlq("not-published"), 102)
    ledger.reply(b"not json", 103)
    ledger.dead_letter(b"\xff\xfe", 103)
    ledger.reply(b"[1, 2]", 103)  # JSON, but not an object

    s = ledger.summary()
    assert s.unexpected == 4
    assert [(u["subject"], u["request_id"]) for u in ledger.unexpected] == [
        ("reply", "someone-elses"),
        ("reply", None),
        ("reply", None),
        ("dlq", "not-published"),
    ]
    assert s.unparsable == 3
    assert s.lost == 1 and s.lost_ids == ["mine"], "foreign replies answer nothing of ours"


def test_a_valid_message_shed_to_the_dlq_is_found_by_its_embedded_payload() -> None:
    ledger = Ledger("run1")
    acked(ledger, "run1-1", "valid")
    record = {"request_id": None, "message": request_body("valid", "run1-1", "tenant-a").decode()}
    ledger.dead_letter(json.dumps(record).encode(), 104)
    ledger.dead_letter(json.dumps({"request_id": None, "message": "{not json"}).encode(), 105)

    assert ledger.entries["run1-1"].outcome() == "dead_lettered"
    s = ledger.summary()
    assert s.valid_dead_lettered == ["run1-1"] and s.lost == 0
    assert s.unexpected == 1, "a DLQ record naming no request is still unexpected"


def test_foreign_answers_usage_events_and_http_decides() -> None:
    ledger = Ledger("run1")
    acked(ledger, "run1-1", "valid")
    http = ledger.published("run1-2", "http", 100.0)
    ledger.http_answer(http, 200, 100.05)
    ledger.reply(ok("run1-1"), 100.2)
    ledger.reply(ok("run0-9"), 100.3)  # another run's, replayed
    ledger.usage_event(json.dumps({"request_id": "run1-2"}).encode(), 100.4)
    ledger.usage_event(b"nope", 100.5)

    s = ledger.summary()
    assert (s.foreign, s.unexpected, s.unparsable) == (1, 0, 1)
    assert (s.http_sent, s.http_answered) == (1, 1)
    assert s.usage_missing == 1 and s.usage_missing_ids == ["run1-1"]
    assert ledger.entries["run1-2"].outcome() == "answered"


def test_latency_percentiles_cover_valid_requests_only() -> None:
    ledger = Ledger()
    for i in range(1, 101):
        acked(ledger, f"v{i}", "valid", at=1000.0)
        ledger.reply(ok(f"v{i}"), 1000.0 + i / 100)  # 0.01 .. 1.00 s
    acked(ledger, "slow-poison", "poison", at=1000.0)
    ledger.dead_letter(dlq("slow-poison"), 1100.0)  # 100 s, must not count
    latency = ledger.summary().latency_s
    assert latency.count == 100
    assert latency.p50 == pytest.approx(0.505, abs=0.001)
    assert latency.p95 == pytest.approx(0.9505, abs=0.001)
    assert latency.p99 == pytest.approx(0.9901, abs=0.001)
    assert latency.max == pytest.approx(1.0)


def test_latency_edge_cases() -> None:
    assert Ledger().summary().latency_s == Latency(count=0)
    ledger = Ledger()
    acked(ledger, "only", "valid", at=10.0)
    ledger.reply(ok("only"), 10.5)
    latency = ledger.summary().latency_s
    assert latency.count == 1
    assert latency.p50 == latency.p99 == latency.max == pytest.approx(0.5)


def test_workload_mix_and_request_bodies_without_io() -> None:
    spec = WorkloadSpec(mix={"valid": 0.7, "poison": 0.2, "malformed": 0.1})
    a = WorkloadDriver("nats://127.0.0.1:1", spec, seed=7)
    b = WorkloadDriver("nats://127.0.0.1:1", spec, seed=7)
    kinds = [a._next_kind() for _ in range(20000)]
    assert kinds[:200] == [b._next_kind() for _ in range(200)], "seeded: reproducible"
    for kind, share in (("valid", 0.7), ("poison", 0.2), ("malformed", 0.1)):
        assert kinds.count(kind) / len(kinds) == pytest.approx(share, abs=0.015), kind

    a.set_poison_override(0.02)
    kinds = [a._next_kind() for _ in range(5000)]
    positions = [i for i, kind in enumerate(kinds) if kind == "poison"]
    assert positions == list(range(0, 5000, 50)), "a fault's poison: first at once, then even"
    share = kinds.count("malformed") / (len(kinds) - len(positions))
    assert share == pytest.approx(0.1 / 0.8, abs=0.02), "the mix's malformed share is kept"
    a.set_poison_override(None)
    assert a.poison_fraction() == 0.2

    poison = json.loads(request_body("poison", "r1", spec.poison_tenant))
    assert poison["tenant_id"] == "tenant-blocked" and "task" in poison
    malformed = json.loads(request_body("malformed", "r2", "tenant-a"))
    assert "task" not in malformed and malformed["request_id"] == "r2"
