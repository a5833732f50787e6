"""One run per target at a time: a second run would stack faults on a target already under test."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from harness.errors import HarnessError


class TargetLocked(HarnessError):
    """Another run holds the target; the message names it."""


class TargetLock:
    """An exclusive `flock` on the target's state dir; the kernel drops it if we die."""

    def __init__(self, directory: Path, run_id: str, target_name: str):
        self.path = directory / "run.lock"
        self.run_id = run_id
        self.target_name = target_name
        self._fd: int | None = None

    def holder(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (FileNotFoundError, ValueError):
            return {}

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            held = self.holder()
            since = time.strftime("%H:%M:%S", time.localtime(held.get("started_at", 0)))
            raise TargetLocked(
                f"target {self.target_name!r} is under test by run {held.get('run_id', '?')} "
                f"(pid {held.get('pid', '?')} on {held.get('host', '?')}, since {since}); "
                "wait for it to finish or stop it"
            ) from None
        info = {
            "run_id": self.run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": time.time(),
        }
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> TargetLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
