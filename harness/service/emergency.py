"""Emergency stop: heal every fault on every target now, and prove it by reading the target back.

Heals from each target's fault journal without waiting for its lock (the run holding it is
being cancelled at the same moment, and may be stuck), then reads Toxiproxy back. A run that
was mid-inject may re-create a fault after the first pass (its journal entry comes first), so
passes repeat until the journal is empty and no `harness_` toxic is left, or time runs out.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import Any

import anyio

from harness.config import Target
from harness.errors import HarnessError, describe
from harness.faults.journal import Journal, state_dir
from harness.faults.lock import TargetLock, TargetLocked
from harness.runner import heal_target
from harness.toxiproxy_client import ToxiproxyClient

OURS = "harness_"


async def read_back(target: Target) -> dict[str, Any]:
    """Every proxy's enabled flag and toxic names as the target's Toxiproxy reports them."""
    proxies = await ToxiproxyClient(target.toxiproxy_url, timeout=1.5).proxies()
    return {
        name: {
            "enabled": bool(p.get("enabled", True)),
            "toxics": sorted(t["name"] for t in p.get("toxics", [])),
        }
        for name, p in proxies.items()
    }


async def _sweep(target: Target, state: dict[str, Any]) -> list[str]:
    """Remove toxics named as the harness names them that no journal entry accounts for."""
    client = ToxiproxyClient(target.toxiproxy_url, timeout=1.5)
    removed = []
    for proxy, info in state.items():
        for toxic in info["toxics"]:
            if toxic.startswith(OURS):
                await client.remove_toxic(proxy, toxic)
                removed.append(f"{proxy}/{toxic}")
    return removed


async def heal_one(target: Target, budget: float) -> dict[str, Any]:
    """Heal passes on one target until read-back is clean or the budget is spent."""
    started = time.monotonic()
    healed: list[dict[str, Any]] = []
    swept: list[str] = []
    state: dict[str, Any] | None = None
    errors: list[str] = []
    with anyio.move_on_after(budget) as scope:
        while True:
            errors = []
            try:
                outcomes = await heal_target(target, take_lock=False)
                healed += [o.model_dump(mode="json") for o in outcomes]
                state = await read_back(target)
                left = [t for p in state.values() for t in p["toxics"] if t.startswith(OURS)]
                if left:
                    swept += await _sweep(target, state)
                    state = await read_back(target)
            except (HarnessError, OSError) as exc:
                errors.append(describe(exc))
            journal = Journal.for_target(target).entries()
            clean = (
                state is not None
                and not journal
                and not any(t.startswith(OURS) for p in state.values() for t in p["toxics"])
            )
            if clean or not journal and errors:
                break
            await anyio.sleep(0.05)
    journal = [e["key"] for e in Journal.for_target(target).entries()]
    if scope.cancelled_caught:
        errors.append(f"not proven clean within {budget:g}s")
    return {
        "target": target.name,
        "healed": healed,
        "swept": swept,
        "journal_left": journal,
        "read_back": state,
        "clean": not journal and state is not None and not errors,
        "errors": errors,
        "seconds": round(time.monotonic() - started, 3),
    }


async def heal_everywhere(targets: list[Target], budget: float = 1.8) -> list[dict[str, Any]]:
    """`heal_one` on every target concurrently; one report per target."""
    reports: list[dict[str, Any]] = [{} for _ in targets]

    async def one(i: int, target: Target) -> None:
        reports[i] = await heal_one(target, budget)

    async with anyio.create_task_group() as tg:
        for i, target in enumerate(targets):
            tg.start_soon(one, i, target)
    return reports


def stop_lock_holders(targets: list[Target]) -> list[str]:
    """Direct mode's "cancel every run": SIGTERM (a run heals on it) to the process on this
    host holding a target's lock — only while the lock is really held, so a stale pid in the
    lock file is never signalled."""
    done = []
    for target in targets:
        lock = TargetLock(state_dir(target), "stop-all", target.name)
        try:
            lock.acquire()
        except TargetLocked:
            holder = lock.holder()
        else:
            lock.release()
            continue
        pid = holder.get("pid")
        if not pid or holder.get("host") != socket.gethostname() or pid == os.getpid():
            continue
        try:
            os.kill(int(pid), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue
        done.append(f"{target.name}: SIGTERM to run {holder.get('run_id')} (pid {pid})")
    return done
