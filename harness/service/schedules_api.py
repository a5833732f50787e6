"""Schedules CRUD. A schedule is checked like a run request when it is saved (its scenarios
and target must exist, the token's policy must allow them and allow scheduling), so a bad one is
refused at once rather than skipped at 3 a.m. A schedule belongs to the token that created it:
only it or an admin may replace or delete it. Schedules declared in the schedules file are
read-only here: the file is their source. Store reads and next-fire computations run off the
event loop."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response

from harness.service.api import audited, field_error
from harness.service.auth import Principal
from harness.service.policy import Denied, RunAsk, check_schedule
from harness.service.schedules import Schedule, next_fire
from harness.service.service import PlanProblem, Service

Name = Annotated[str, Path(min_length=1, max_length=200)]


def view(service: Service, row: dict[str, Any]) -> dict[str, Any]:
    """A schedule as the API shows it (blocking: call it in a worker thread)."""
    schedule = Schedule.model_validate(row["spec"])
    upcoming = next_fire(schedule, datetime.fromtimestamp(time.time(), UTC))
    return {
        "name": row["name"],
        "source": row["source"],
        "owner": row.get("owner"),
        "spec": row["spec"],
        "next_fire": upcoming.isoformat() if upcoming else None,
        "last_checked": row["last_checked"],
        "events": service.store.schedule_events(row["name"], limit=20),
    }


def views(service: Service) -> list[dict[str, Any]]:
    return [view(service, row) for row in service.store.schedules()]


def build(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api/schedules", tags=["schedules"])
    reader = Depends(service.auth.reader)
    mutator = Depends(service.auth.mutator)

    async def check(schedule: Schedule, who: Principal) -> None:
        try:
            plan = await service.plan(
                schedule.scenarios,
                target=schedule.target,
                slots=schedule.slots,
                guards=schedule.guards,
            )
        except PlanProblem as exc:
            raise field_error(exc.field, str(exc)) from None
        ask = RunAsk(plan.scenarios, [t.name for t in plan.targets], plan.guards, 0)
        check_schedule(who.name, who.policy, ask)

    async def existing(name: str) -> dict[str, Any]:
        row = await anyio.to_thread.run_sync(service.store.schedule, name)
        if row is None:
            raise HTTPException(404, f"no schedule {name!r}")
        return row

    async def shown(name: str) -> dict[str, Any]:
        row = await existing(name)
        return await anyio.to_thread.run_sync(view, service, row)

    async def editable(name: str, who: Principal) -> dict[str, Any]:
        row = await existing(name)
        if row["source"] == "file":
            raise HTTPException(
                409, f"schedule {name!r} is declared in the schedules file; edit it there"
            )
        if who.role != "admin" and row.get("owner") not in (None, who.name):
            raise Denied("owner", f"schedule {name!r} belongs to {row['owner']!r}; only they "
                         "or an admin may change or delete it")  # fmt: skip
        return row

    @router.get("")
    async def list_schedules(who: Principal = reader) -> list[dict[str, Any]]:
        return await anyio.to_thread.run_sync(views, service)

    @router.post("", status_code=201)
    async def create(body: Schedule, request: Request, who: Principal = mutator) -> dict:
        if await anyio.to_thread.run_sync(service.store.schedule, body.name) is not None:
            raise HTTPException(409, f"schedule {body.name!r} exists; PUT to replace it")
        await check(body, who)
        audit = await audited(service, request, who, "schedule.create", body.name)
        spec = body.model_dump(mode="json")
        await anyio.to_thread.run_sync(
            lambda: service.store.put_schedule(body.name, spec, "api", audit, owner=who.name)
        )
        return await shown(body.name)

    @router.get("/{name}")
    async def get(name: Name, who: Principal = reader) -> dict[str, Any]:
        return await shown(name)

    @router.put("/{name}")
    async def replace(
        name: Name, body: Schedule, request: Request, who: Principal = mutator
    ) -> dict:
        if body.name != name:
            raise field_error("name", f"the body names {body.name!r}, the path {name!r}")
        if await anyio.to_thread.run_sync(service.store.schedule, name) is not None:
            await editable(name, who)
        await check(body, who)
        audit = await audited(service, request, who, "schedule.replace", name)
        spec = body.model_dump(mode="json")
        await anyio.to_thread.run_sync(
            lambda: service.store.put_schedule(name, spec, "api", audit, owner=who.name)
        )
        return await shown(name)

    @router.delete("/{name}", status_code=204)
    async def remove(name: Name, request: Request, who: Principal = mutator) -> Response:
        await editable(name, who)
        audit = await audited(service, request, who, "schedule.delete", name)
        await anyio.to_thread.run_sync(service.store.delete_schedule, name, audit)
        return Response(status_code=204)

    return router
