"""Supervised OS processes: start detached with a log file, probe liveness, stop by pid for sure."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name sits in parentheses and may contain spaces.
    return [raw[: raw.index("(")].strip(), *raw[raw.rindex(")") + 2 :].split()]


def process_start_time(pid: int) -> int | None:
    """Kernel start time of `pid` in clock ticks; tells a live process from a recycled pid."""
    fields = _proc_stat(pid)
    return int(fields[20]) if fields else None


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of `pid` (R, S, T for stopped, Z, ...), None if gone."""
    fields = _proc_stat(pid)
    return fields[1] if fields else None


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """True when `pid` runs (not a zombie) and, if given, started at `start_time`."""
    fields = _proc_stat(pid)
    if fields is None or fields[1] in ("Z", "X"):
        return False
    return start_time is None or int(fields[20]) == start_time


@dataclass
class ProcessRecord:
    """What a later process needs to find, probe and stop a started process."""

    name: str
    pid: int
    start_time: int | None
    argv: list[str]
    log: str

    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_time)


def start_process(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start `argv` in its own session (so it outlives us and can be stopped as a group)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    record = ProcessRecord(name, proc.pid, process_start_time(proc.pid), list(argv), str(log_path))
    return proc, record


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_process(
    record: ProcessRecord, *, grace: float = 5.0, popen: subprocess.Popen[bytes] | None = None
) -> bool:
    """SIGTERM the process group, wait `grace` seconds, then SIGKILL. True when it is gone."""
    if not record.alive():
        return _wait_gone(record, grace, popen)  # dead or dying: reap it, leave no zombie
    _signal_group(record.pid, signal.SIGTERM)
    if _wait_gone(record, grace, popen):
        return True
    _signal_group(record.pid, signal.SIGKILL)
    return _wait_gone(record, 5.0, popen)


def _reap(popen: subprocess.Popen[bytes] | None) -> None:
    if popen is not None:
        with contextlib.suppress(Exception):
            popen.poll()


def _wait_gone(
    record: ProcessRecord, timeout: float, popen: subprocess.Popen[bytes] | None
) -> bool:
    # A killed multi-threaded process shows as a zombie while its other threads still exit,
    # before it can be reaped; a child of ours counts as gone only once reaped (no zombie left).
    ours = popen if popen is not None and popen.pid == record.pid else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(ours)
        if not record.alive() and (ours is None or ours.returncode is not None):
            return True
        time.sleep(0.02)
    _reap(ours)
    return not record.alive()


def tail(path: Path | str, lines: int = 20) -> str:
    """The last `lines` lines of a log file, for error messages."""
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(log is empty)"
