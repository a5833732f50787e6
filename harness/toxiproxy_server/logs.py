"""structlog set-up for the standalone server: key=value lines on stderr, level from LOG_LEVEL."""

from __future__ import annotations

import logging
import os
import sys

import structlog

_LEVELS = {"trace": "debug", "panic": "critical", "fatal": "critical"}


def configure_logging(level: str | None = None) -> None:
    """One event per line; LOG_LEVEL takes Toxiproxy's names (trace … panic) as well."""
    name = (level or os.environ.get("LOG_LEVEL") or "info").lower()
    numeric = logging.getLevelName(_LEVELS.get(name, name).upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.LogfmtRenderer(
                key_order=["timestamp", "level", "event"], drop_missing=True
            ),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
