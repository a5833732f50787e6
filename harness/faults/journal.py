"""The fault journal: what is (or may be) injected on a target, written before it is applied.

A run that dies mid-fault leaves its entries behind; `harness heal` and the next run read them
back and remove the faults. An entry is cleared only once the fault is proven gone.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from harness.config import Target


def state_dir(target: Target) -> Path:
    """Per-target state (journal, lock): a local stack's run dir, else .harness/targets/NAME."""
    if target.kind == "local" and target.run_dir:
        path = Path(target.run_dir)
    else:
        base = Path(os.environ.get("HARNESS_STATE_DIR", ".harness/targets"))
        path = base / re.sub(r"[^A-Za-z0-9_.-]+", "_", target.name)
    path.mkdir(parents=True, exist_ok=True)
    return path


class Journal:
    """Entries keyed by fault key; every change is written to disk (fsync) before returning."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def for_target(cls, target: Target) -> Journal:
        return cls(state_dir(target) / "fault-journal.json")

    def entries(self) -> list[dict[str, Any]]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return []

    def _write(self, entries: list[dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as out:
            json.dump(entries, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)

    def add(self, key: str, record: dict[str, Any]) -> None:
        entries = [e for e in self.entries() if e["key"] != key]
        entries.append({"key": key, "recorded_at": time.time(), **record})
        self._write(entries)

    def update(self, key: str, **fields: Any) -> None:
        entries = self.entries()
        for entry in entries:
            if entry["key"] == key:
                entry.update(fields)
        self._write(entries)

    def remove(self, key: str) -> None:
        self._write([e for e in self.entries() if e["key"] != key])

    # -- operator overrides -----------------------------------------------------------------

    @property
    def forgotten_path(self) -> Path:
        return self.path.with_name("fault-journal-forgotten.jsonl")

    def forget(self, key: str, reason: str, by: str) -> dict[str, Any]:
        """An operator clears an entry whose absence cannot be proven; kept for the record."""
        entry = next((e for e in self.entries() if e["key"] == key), None)
        if entry is None:
            known = ", ".join(e["key"] for e in self.entries()) or "none"
            raise KeyError(f"no journal entry {key!r} (entries: {known})")
        record = {"key": key, "reason": reason, "by": by, "at": time.time(), "entry": entry}
        with self.forgotten_path.open("a") as out:
            out.write(json.dumps(record) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.remove(key)
        return record

    def take_forgotten(self, run_id: str) -> list[dict[str, Any]]:
        """Entries forgotten since the last run, each reported once (in the next run's evidence)."""
        try:
            lines = self.forgotten_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        records = [json.loads(line) for line in lines if line.strip()]
        fresh = [r for r in records if not r.get("reported_in")]
        if fresh:
            for r in records:
                r.setdefault("reported_in", run_id)
            self.forgotten_path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return fresh
