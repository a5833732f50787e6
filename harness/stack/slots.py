"""Slots: several whole local stacks in one run directory, so scenarios run in parallel without
seeing each other's faults, metrics, alerts or notifications.

Slot 0 is the run directory itself (a single-slot stack is exactly the classic local stack);
slot k ≥ 1 lives in `<run_dir>/slots/<k>`. Each slot has its own ports, processes, data, lock
and fault journal.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio

from harness.config import Profile
from harness.stack.component import StackOptions
from harness.stack.stack import LocalStack, StackError

SLOT_MEMORY_BYTES = 1 << 30
"""What one slot may take at its peak (Prometheus, Alertmanager, NATS, router, Toxiproxy,
webhook: about 350 MB idle), with headroom."""
MAX_SLOTS = 8


def default_slots() -> int:
    """What this machine can hold: two slots per core plus one (a slot's processes mostly wait
    on timers and the network: with five, 2 cores were about half idle), no more than
    available memory allows, at most MAX_SLOTS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        available = SLOT_MEMORY_BYTES * MAX_SLOTS
    return max(1, min(2 * (cores or 1) + 1, available // SLOT_MEMORY_BYTES, MAX_SLOTS))


def slot_dir(run_dir: Path, index: int) -> Path:
    return run_dir if index == 0 else run_dir / "slots" / str(index)


def existing(run_dir: Path) -> list[LocalStack]:
    """Every slot with a stack recorded in `run_dir`, in slot order."""
    indexes = [0] if (run_dir / "stack.json").exists() else []
    slots = run_dir / "slots"
    if slots.is_dir():
        indexes += sorted(
            int(p.name) for p in slots.iterdir() if p.name.isdigit() and (p / "stack.json").exists()
        )
    return [LocalStack.attach(slot_dir(run_dir, i)) for i in indexes]


async def up(
    run_dir: Path,
    count: int,
    *,
    profile: Profile | None = None,
    options: StackOptions | None = None,
    deploy_dir: Path | None = None,
) -> list[LocalStack]:
    """Start slots 0..count-1 that are not up yet, concurrently; returns the ones it started.
    If any fails, the ones started here are stopped again."""
    started: list[LocalStack] = []
    failures: list[BaseException] = []
    todo = [
        LocalStack(slot_dir(run_dir, i), profile=profile, options=options, deploy_dir=deploy_dir)
        for i in range(count)
        if not (slot_dir(run_dir, i) / "stack.json").exists()
    ]

    async def one(stack: LocalStack) -> None:
        try:
            await stack.up()
            started.append(stack)
        except BaseException as exc:  # collected, the others are rolled back
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        for stack in todo:
            tg.start_soon(one, stack)
    if failures:
        down(started)
        error = failures[0]
        raise error if isinstance(error, StackError) else StackError(str(error))
    return started


async def up_mix(
    run_dir: Path,
    mix: list[tuple[int, StackOptions]],
    *,
    profile: Profile | None = None,
    deploy_dir: Path | None = None,
) -> list[LocalStack]:
    """Slots of several kinds: for each (count, options) in order, the slots up to `count` with
    those options (e.g. single-node slots 0..4, then cluster slots 5..6). If a later group
    fails, the slots started earlier are stopped again."""
    started: list[LocalStack] = []
    try:
        for count, options in mix:
            started += await up(
                run_dir, count, profile=profile, options=options, deploy_dir=deploy_dir
            )
    except BaseException:
        down(started)
        raise
    return started


def name(stack: LocalStack) -> str:
    """`slot 0`, `slot 1`, ... from the stack's directory."""
    return f"slot {stack.run_dir.name}" if stack.run_dir.parent.name == "slots" else "slot 0"


def down(stacks: list[LocalStack]) -> list[str]:
    """Stop every slot given; returns what was stopped, per slot."""
    stopped = []
    for stack in reversed(stacks):
        names = stack.down()
        if names:
            stopped.append(f"{name(stack)}: {', '.join(names)}")
    return stopped
