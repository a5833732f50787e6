"""The store: forward migrations keep data, the schema version is recorded, SQLite runs in
WAL mode, history filters and pages, a newer schema is refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, text

from harness.service.store import LATEST, RunFilter, Store, make_engine, migrate, runs, version


def run_row(run_id: str, created: float, **fields: object) -> dict[str, object]:
    row = {"id": run_id, "status": "passed", "created_at": created, "started_by": "t",
           "targets": [], "scenarios": ["S1"], "request": {}, "out_dir": "/x"}  # fmt: skip
    return {"reason": "", **row, **fields}


def test_a_version_1_database_migrates_forward_and_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    assert migrate(engine, upto=1) == 1
    with engine.begin() as conn:
        conn.execute(insert(runs).values(**run_row("old-run", 1.0)))
    indexes = {i["name"] for i in inspect(engine).get_indexes("runs")}
    assert "ix_runs_created_at" not in indexes
    assert "checks" not in {c["name"] for c in inspect(engine).get_columns("scenario_results")}
    engine.dispose()

    store = Store(url)
    with store.engine.connect() as conn:
        assert version(conn) == LATEST == 4
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert "ix_runs_created_at" in {i["name"] for i in inspect(store.engine).get_indexes("runs")}
    assert store.run("old-run")["status"] == "passed"  # type: ignore[index]
    columns = {c["name"] for c in inspect(store.engine).get_columns("scenario_results")}
    assert "checks" in columns
    audit = {c["name"] for c in inspect(store.engine).get_columns("audit_log")}
    assert {"client", "outcome", "detail"} <= audit and store.lever() is None
    assert Store(url).counts()["runs"] == 1  # opening again migrates nothing


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    store = Store(url)
    with store.engine.begin() as conn:
        conn.execute(text(f"UPDATE schema_version SET version = {LATEST + 1}"))
    with pytest.raises(RuntimeError, match="newer than this harness"):
        Store(url)


def test_history_filters_and_pages(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    now = time.time()
    for i in range(5):
        store.add_run(run_row(f"r{i}", now + i, status="passed" if i % 2 else "failed",
                              schedule="nightly" if i < 2 else None))  # fmt: skip
        store.save_result(f"r{i}", {"scenario_id": "S1" if i < 3 else "JS-001", "verdict": "passed",
                                    "reason": "", "target": "local"})  # fmt: skip
    page, total = store.runs(RunFilter(), limit=2, offset=1)
    assert total == 5 and [r["id"] for r in page] == ["r3", "r2"]
    assert [r["id"] for r in store.runs(RunFilter(verdict="failed"))[0]] == ["r4", "r2", "r0"]
    assert [r["id"] for r in store.runs(RunFilter(scenario="JS-001"))[0]] == ["r4", "r3"]
    assert [r["id"] for r in store.runs(RunFilter(schedule="nightly"))[0]] == ["r1", "r0"]
    window = RunFilter(since=now + 1, until=now + 3)
    assert [r["id"] for r in store.runs(window)[0]] == ["r2", "r1"]
    assert store.runs(RunFilter(), limit=1)[0][0]["results"][0]["scenario_id"] == "JS-001"
