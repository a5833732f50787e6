"""One service per data directory: an exclusive lock on `<data dir>/service.lock`, held for the
service's lifetime. A second `harness serve` on the same directory would schedule the same
game-days twice and mark the first one's runs interrupted; it refuses to start instead."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from typing import IO

from harness.errors import HarnessError


class DataDirInUse(HarnessError):
    """Another service holds the data directory."""


class DataDirLock:
    def __init__(self, data_dir: Path):
        self.path = data_dir / "service.lock"
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> None:
        if self._file is not None:
            return
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            try:
                who = json.loads(holder)
                by = f"pid {who['pid']} on {who['host']}"
            except (ValueError, KeyError, TypeError):
                by = "another process"
            raise DataDirInUse(
                f"data directory {self.path.parent} is in use by another harness serve ({by}); "
                "run one service per data directory, or give this one its own --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
