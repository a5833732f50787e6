"""Logging for the standalone server: the harness's set-up, with LOG_LEVEL in Toxiproxy's names."""

from __future__ import annotations

import os

from harness.logs import configure_logging as configure_harness_logging

_LEVELS = {"trace": "debug", "panic": "critical", "fatal": "critical"}
_KNOWN = {"debug", "info", "warning", "error", "critical"}


def configure_logging(level: str | None = None) -> None:
    """One event per line; LOG_LEVEL takes Toxiproxy's names (trace … panic) as well."""
    name = (level or os.environ.get("LOG_LEVEL") or "info").lower()
    name = {**_LEVELS, "warn": "warning"}.get(name, name)
    configure_harness_logging(name if name in _KNOWN else "info")
