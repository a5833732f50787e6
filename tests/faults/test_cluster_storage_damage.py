"""The storage damage of a node's newest block file, on temp files laid out like a store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness.faults.base import FaultNotInEffect
from harness.faults.storage import damage_file, file_facts, newest_block


def store(tmp_path: Path, blocks: dict[str, bytes], account: str = "$G") -> Path:
    """A node directory with `<store>/jetstream/<account>/streams/s/msgs/<blocks>`."""
    msgs = tmp_path / "nats-n2" / "jetstream" / "jetstream" / account / "streams" / "s" / "msgs"
    msgs.mkdir(parents=True)
    for name, data in blocks.items():
        (msgs / name).write_bytes(data)
    (msgs.parent / "meta.inf").write_bytes(b"{}")
    return tmp_path / "nats-n2"


def test_newest_block_is_the_highest_numbered_of_the_stream(tmp_path: Path) -> None:
    node = store(tmp_path, {"2.blk": b"b" * 10, "10.blk": b"c" * 10, "9.blk": b"a", "1.idx": b""})
    assert newest_block(node, "s").name == "10.blk"
    with pytest.raises(FaultNotInEffect, match="no block file of stream other"):
        newest_block(node, "other")


def test_any_account_is_searched(tmp_path: Path) -> None:
    node = store(tmp_path, {"1.blk": b"x"}, account="APP")
    assert newest_block(node, "s").parts[-5] == "APP"


def test_bitflip_changes_exactly_the_recorded_bits(tmp_path: Path) -> None:
    path = tmp_path / "1.blk"
    original = bytes(range(256)) * 4
    path.write_bytes(original)
    done = damage_file(path, "bitflip", bits=5, seed=7)
    data = path.read_bytes()
    assert len(data) == len(original)
    changed = [
        i * 8 + b for i in range(len(data)) for b in range(8) if (data[i] ^ original[i]) >> b & 1
    ]
    assert changed == done["flipped_bits"] and len(changed) == 5
    assert done["before"] == {"size": 1024, "sha256": hashlib.sha256(original).hexdigest()}
    assert done["after"] == file_facts(path) and done["after"]["sha256"] != done["before"]["sha256"]
    again = tmp_path / "2.blk"
    again.write_bytes(original)
    assert damage_file(again, "bitflip", bits=5, seed=7)["flipped_bits"] == done["flipped_bits"]


def test_truncate_keeps_the_given_share(tmp_path: Path) -> None:
    path = tmp_path / "1.blk"
    path.write_bytes(b"m" * 1000)
    done = damage_file(path, "truncate", keep=0.25)
    assert path.stat().st_size == 250 == done["truncated_to"] == done["after"]["size"]
    assert done["before"]["size"] == 1000


def test_an_empty_block_cannot_be_damaged(tmp_path: Path) -> None:
    path = tmp_path / "1.blk"
    path.write_bytes(b"")
    with pytest.raises(FaultNotInEffect, match="empty"):
        damage_file(path, "truncate")
