"""The NATS servers' sync interval as a scenario may set it: the value, whether the running
servers already have it, and what the evidence records of setting it.

How often nats-server fsyncs its store trades durability for speed: with the default (every
2 minutes) a coordinated crash can lose acknowledged writes, with `always` every write is on
disk before its ack. nats-server cannot reload the setting, so running a scenario with another
one means restarting the servers (a local stack does, `harness.sync_apply`); an external
target that runs another one is refused, never run with the wrong setting. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from harness.config import Strict
from harness.dataloss import Durability
from harness.durations import format_duration_ms, parse_duration_ms

ALWAYS = "always"
SERVER_DEFAULT_S = 120.0
"""nats-server's own sync interval when none is configured (2 minutes)."""


def _normalize(value: object) -> str:
    """`always`, or a duration normalized (`120s` → `2m`): also what the server's config
    takes (Go's duration syntax reads every duration we write)."""
    if isinstance(value, str) and value.strip().lower() == ALWAYS:
        return ALWAYS
    if isinstance(value, str):
        try:
            ms = parse_duration_ms(value)
        except ValueError as exc:
            raise ValueError(f"must be `always` or a duration such as 2m or 10s: {exc}") from None
        if ms <= 0:
            raise ValueError("must be `always` or a duration above zero (e.g. 2m, 10s)")
        return format_duration_ms(ms)
    raise ValueError(f"must be `always` or a duration string such as 2m or 10s, not {value!r}")


SyncInterval = Annotated[str, BeforeValidator(_normalize)]
"""`always` or a normalized duration (`2m`, `10s`, `500ms`)."""


class NatsSettings(Strict):
    """Server settings a scenario needs its NATS servers to run with (a scenario's `nats:`)."""

    sync_interval: SyncInterval = Field(
        description="how often the servers fsync their store: `always` (every write before its "
        "ack) or a duration (the server's default is 2m); wall-clock time, never compressed. "
        "A local stack restarts its nodes with it before the baseline and restores its own "
        "setting after the scenario; an external target that runs another one is refused"
    )


def seconds(value: str) -> float | None:
    """The interval of `value` in seconds; None for `always`."""
    return None if value == ALWAYS else parse_duration_ms(value) / 1000.0


def describe(value: str | None) -> str:
    if value is None:
        return f"the server's default (every {SERVER_DEFAULT_S:g}s)"
    return "sync always" if value == ALWAYS else f"sync every {value}"


def mismatch(want: str | None, running: Durability) -> str | None:
    """Why one node does not run with `want` (None: the server's default); None when it does.
    A node whose `/varz` could not be read is a mismatch: its setting is not proven."""
    if running.error:
        return f"{running.node}: setting unknown ({running.error})"
    if want == ALWAYS:
        ok = bool(running.sync_always)
    else:
        interval = SERVER_DEFAULT_S if want is None else seconds(want)
        ok = not running.sync_always and running.sync_interval_s == interval
    return None if ok else f"{running}"


def mismatches(want: str | None, running: Sequence[Durability]) -> list[str]:
    """Every node that does not run with `want`, each with what it runs: empty when no
    restart is needed."""
    return [why for d in running if (why := mismatch(want, d)) is not None]


class SyncIntervalApplied(BaseModel):
    """What preflight did about the scenario's sync interval, as read back from `/varz`."""

    model_config = ConfigDict(extra="forbid")

    wanted: str = Field(description="`always`, a duration, or `default` (the slot's own)")
    restarted: list[str] = Field(
        default_factory=list, description="the NATS components restarted to run with it"
    )
    restart_s: float | None = Field(None, description="how long the restart took until whole")
    running: list[Durability] = Field(
        default_factory=list, description="each node's setting read back after"
    )
    settled_s: float | None = Field(
        None,
        description="how long preflight waited for a restart of ours to leave the range "
        "windows of the alerts the scenario names",
    )
