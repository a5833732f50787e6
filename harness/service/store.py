"""The run store behind SQLAlchemy Core: runs, scenario results, schedules, schedule events and
the audit log, with a schema version and forward migrations.

SQLite (WAL, one file under the data dir) is the default and the tested backend; a PostgreSQL
URL is accepted (the DDL and queries use only portable constructs) but no test runs against one.
Every write that answers a request commits together with its audit entry, so a change and the
record of who made it cannot be separated, and a rejected request writes nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("started_by", String(200), nullable=False, default=""),
    Column("schedule", String(200)),
    Column("targets", JSON, nullable=False),
    Column("scenarios", JSON, nullable=False),
    Column("request", JSON, nullable=False),
    Column("out_dir", Text, nullable=False),
    Column("aborted_by", JSON),
    Column("reason", Text, nullable=False, default=""),
    Column("notify_error", Text),
    Column("note", Text),  # added by migration 4
)

scenario_results = Table(
    "scenario_results",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("scenario_id", String(100), primary_key=True),
    Column("verdict", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("target", String(200), nullable=False, default=""),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("checks", JSON),  # added by migration 3
)

schedules = Table(
    "schedules",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("source", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_checked", Float),
    Column("owner", String(200)),  # added by migration 4
)

schedule_events = Table(
    "schedule_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("at", Float, nullable=False),
    Column("scheduled_for", Float),
    Column("run_id", String(64)),
    Column("detail", Text, nullable=False, default=""),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("token", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", Text, nullable=False, default=""),
    Column("body_digest", String(64), nullable=False, default=""),
    Column("client", String(100)),  # added by migration 4, like the two below
    Column("outcome", String(16)),
    Column("detail", Text),
)

lever = Table(
    "lever",
    metadata,
    Column("id", Integer, primary_key=True),  # one row: the service's safety lever
    Column("engaged", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
)

TABLES = (runs, scenario_results, schedules, schedule_events, audit_log, lever)
LATER = {
    "scenario_results": ["checks"],
    "runs": ["note"],
    "schedules": ["owner"],
    "audit_log": ["client", "outcome", "detail"],
}
"""Columns each table gained after version 1 (their migration adds them)."""
FROM_V4 = ("lever",)


def _v1(conn: Connection) -> None:
    """The tables as version 1 had them (columns added later are left to their migration)."""
    later = LATER
    v1 = MetaData()
    for table in [schema_version, *(t for t in TABLES if t.name not in FROM_V4)]:
        columns = [
            Column(
                c.name,
                c.type,
                primary_key=c.primary_key,
                nullable=c.nullable,
                autoincrement=c.autoincrement,
            )  # fmt: skip
            for c in table.columns
            if c.name not in later.get(table.name, [])
        ]
        Table(table.name, v1, *columns)
    v1.create_all(conn)


def _v2(conn: Connection) -> None:
    """History queries filter by time, scenario and schedule. (Plain DDL: an Index object
    would attach itself to the table and leak into version 1's create_all.)"""
    for statement in (
        "CREATE INDEX ix_runs_created_at ON runs (created_at)",
        "CREATE INDEX ix_runs_schedule ON runs (schedule)",
        "CREATE INDEX ix_scenario_results_scenario ON scenario_results (scenario_id)",
        "CREATE INDEX ix_schedule_events_schedule ON schedule_events (schedule, at)",
    ):
        conn.execute(text(statement))


def _v3(conn: Connection) -> None:
    """Each scenario's checks (name, kind, status, summary), so history shows them without
    reading evidence files."""
    conn.execute(text("ALTER TABLE scenario_results ADD COLUMN checks JSON"))


def _v4(conn: Connection) -> None:
    """The safety lever; a run's note (free text, apart from who started it); a schedule's
    owner (only they or an admin may change it); the client address, outcome and detail of an
    audit entry (denied calls, scheduler and guard actions are audited too)."""
    for table, columns in LATER.items():
        for column in columns:
            if table == "scenario_results":
                continue
            kind = "VARCHAR(200)" if column in ("owner", "client", "outcome") else "TEXT"
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
    v4 = MetaData()
    Table(lever.name, v4, *[Column(c.name, c.type, primary_key=c.primary_key,
                                   nullable=c.nullable) for c in lever.columns])  # fmt: skip
    v4.create_all(conn)


MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3, _v4]
"""Forward only: migration i brings the schema from version i to i+1. A change to a table
above is shipped as a new entry here (ALTER TABLE …), never by editing an old one."""
LATEST = len(MIGRATIONS)


@dataclass(frozen=True)
class Audit:
    """Who made a call (a token's name, `scheduler`, `guard:<name>`), from where, what it was
    (the body as a SHA-256 digest), and whether it was done (`ok`) or refused (`denied`)."""

    token: str
    action: str
    target: str = ""
    body: bytes = b""
    client: str = ""
    outcome: str = "ok"
    detail: str = ""

    def row(self) -> dict[str, Any]:
        digest = hashlib.sha256(self.body).hexdigest() if self.body else ""
        return {
            "at": time.time(),
            "token": self.token[:200],
            "action": self.action,
            "target": self.target,
            "body_digest": digest,
            "client": self.client[:100],
            "outcome": self.outcome,
            "detail": self.detail[:2000],
        }


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str) -> Engine:
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    return conn.execute(select(func.max(schema_version.c.version))).scalar() or 0


def migrate(engine: Engine, upto: int = LATEST) -> int:
    """Apply the migrations the database lacks, each in its own transaction; the version."""
    with engine.begin() as conn:
        current = version(conn)
    if current > LATEST:
        raise RuntimeError(f"database schema v{current} is newer than this harness (v{LATEST})")
    for number in range(current, upto):
        with engine.begin() as conn:
            MIGRATIONS[number](conn)
            conn.execute(delete(schema_version))
            conn.execute(insert(schema_version).values(version=number + 1))
    return max(current, upto)


RUN_STATUSES = (
    "queued",
    "running",
    "passed",
    "failed",
    "error",
    "interrupted",
    "cancelled",
    "aborted",
)
UNFINISHED = ("queued", "running")


@dataclass(frozen=True)
class RunFilter:
    scenario: str | None = None
    verdict: str | None = None
    schedule: str | None = None
    since: float | None = None
    until: float | None = None


class Store:
    """Typed reads and writes; each method is one transaction."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def _write(self, statements: Iterable[Any], audit: Audit | None) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)
            if audit is not None:
                conn.execute(insert(audit_log).values(**audit.row()))

    def audit(self, entry: Audit) -> None:
        self._write([], entry)

    # --- runs ----------------------------------------------------------------------------

    def add_run(self, row: dict[str, Any], audit: Audit | None = None) -> None:
        self._write([insert(runs).values(**row)], audit)

    def update_run(self, run_id: str, audit: Audit | None = None, **fields: Any) -> None:
        self._write([update(runs).where(runs.c.id == run_id).values(**fields)], audit)

    def save_result(self, run_id: str, result: dict[str, Any]) -> None:
        key = (scenario_results.c.run_id == run_id) & (
            scenario_results.c.scenario_id == result["scenario_id"]
        )
        row = insert(scenario_results).values(run_id=run_id, **result)
        self._write([delete(scenario_results).where(key), row], None)

    def run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                return None
            return {**row, "results": self._results(conn, [run_id]).get(run_id, [])}

    def _results(self, conn: Connection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        rows = conn.execute(
            select(scenario_results).where(scenario_results.c.run_id.in_(ids))
        ).mappings()
        out: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            out.setdefault(row["run_id"], []).append(
                {k: v for k, v in row.items() if k != "run_id"}
            )
        return out

    def runs(
        self, where: RunFilter, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of runs, newest first, and how many match in all."""
        query = select(runs)
        if where.scenario:
            query = query.where(
                runs.c.id.in_(
                    select(scenario_results.c.run_id).where(
                        scenario_results.c.scenario_id == where.scenario
                    )
                )
            )
        if where.verdict:
            query = query.where(runs.c.status == where.verdict)
        if where.schedule:
            query = query.where(runs.c.schedule == where.schedule)
        if where.since is not None:
            query = query.where(runs.c.created_at >= where.since)
        if where.until is not None:
            query = query.where(runs.c.created_at < where.until)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar() or 0
            page = list(
                conn.execute(
                    query.order_by(runs.c.created_at.desc(), runs.c.id.desc())
                    .limit(limit)
                    .offset(offset)
                ).mappings()
            )
            results = self._results(conn, [r["id"] for r in page])
        return [{**r, "results": results.get(r["id"], [])} for r in page], total

    def unfinished_runs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(select(runs).where(runs.c.status.in_(UNFINISHED))).mappings()
            ]

    def last_passed(self) -> dict[str, float]:
        """Per schedule, when its last passed run ended."""
        query = (
            select(runs.c.schedule, func.max(runs.c.ended_at))
            .where(runs.c.schedule.is_not(None), runs.c.status == "passed")
            .group_by(runs.c.schedule)
        )
        with self.engine.connect() as conn:
            return {name: at for name, at in conn.execute(query) if at is not None}

    # --- schedules -------------------------------------------------------------------------

    def schedules(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(schedules).order_by(schedules.c.name)).mappings()
            return [dict(r) for r in rows]

    def schedule(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schedules).where(schedules.c.name == name)).mappings()
            first = row.first()
            return dict(first) if first else None

    def put_schedule(
        self,
        name: str,
        spec: dict[str, Any],
        source: str,
        audit: Audit | None = None,
        owner: str | None = None,
    ) -> bool:
        """Create or replace (the owner stays who created it); True when it was created."""
        now = time.time()
        existing = self.schedule(name)
        if existing is None:
            statement = insert(schedules).values(
                name=name, spec=spec, source=source, created_at=now, updated_at=now, owner=owner
            )
        else:
            statement = (
                update(schedules)
                .where(schedules.c.name == name)
                .values(spec=spec, source=source, updated_at=now)
            )
        self._write([statement], audit)
        return existing is None

    def delete_schedule(self, name: str, audit: Audit | None = None) -> None:
        self._write([delete(schedules).where(schedules.c.name == name)], audit)

    def set_last_checked(self, name: str, at: float) -> None:
        self._write(
            [update(schedules).where(schedules.c.name == name).values(last_checked=at)], None
        )

    def add_schedule_event(
        self,
        schedule: str,
        outcome: str,
        *,
        scheduled_for: float | None = None,
        run_id: str | None = None,
        detail: str = "",
    ) -> None:
        row = {
            "schedule": schedule,
            "outcome": outcome,
            "at": time.time(),
            "scheduled_for": scheduled_for,
            "run_id": run_id,
            "detail": detail,
        }
        self._write([insert(schedule_events).values(**row)], None)

    def schedule_events(self, schedule: str, limit: int = 50) -> list[dict[str, Any]]:
        query = (
            select(schedule_events)
            .where(schedule_events.c.schedule == schedule)
            .order_by(schedule_events.c.at.desc(), schedule_events.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # --- audit -----------------------------------------------------------------------------

    def audit_entries(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # --- the safety lever ------------------------------------------------------------------

    def lever(self) -> dict[str, Any] | None:
        """The lever's last change (engaged or released), or None if it was never touched."""
        with self.engine.connect() as conn:
            row = conn.execute(select(lever).where(lever.c.id == 1)).mappings().first()
            return dict(row) if row else None

    def set_lever(self, engaged: bool, by: str, reason: str, audit: Audit | None = None) -> None:
        values = {"engaged": int(engaged), "at": time.time(), "by": by, "reason": reason}
        with self.engine.begin() as conn:
            conn.execute(delete(lever))
            conn.execute(insert(lever).values(id=1, **values))
            if audit is not None:
                conn.execute(insert(audit_log).values(**audit.row()))

    def counts(self) -> dict[str, int]:
        """Rows per table (tests prove a rejected request wrote nothing)."""
        with self.engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar() or 0
                for t in TABLES
            }
