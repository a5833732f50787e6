"""Where the project's deploy/ files and the local stack's run directory are."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_RUN_DIR = Path(".harness") / "local"


def project_root() -> Path:
    """The checkout the harness runs from: `HARNESS_PROJECT_DIR`, else the package's parent."""
    env = os.environ.get("HARNESS_PROJECT_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent


def deploy_dir() -> Path:
    """`deploy/` with the rules, Alertmanager config and dashboards the stack loads."""
    return project_root() / "deploy"


def run_dir(explicit: Path | None = None) -> Path:
    """The local stack's run directory: the option, `HARNESS_RUN_DIR`, or `./.harness/local`."""
    if explicit is not None:
        return explicit
    env = os.environ.get("HARNESS_RUN_DIR")
    return Path(env) if env else DEFAULT_RUN_DIR


def output_dir_problem(path: Path) -> str | None:
    """Why `path` cannot be an output directory (it is a file, or no writable directory holds
    it), or None when it can."""
    if path.exists() and not path.is_dir():
        return f"{path} exists and is not a directory"
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None
