"""Structured logging: key=value lines on stderr, optionally JSON lines into a run directory."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

import structlog

_json_file: TextIO | None = None


def configure_logging(
    level: str = "info", json_path: Path | None = None, console_level: str | None = None
) -> None:
    """Set up structlog once per process; call again to add or move the JSON-lines file.

    Events at `level` and above go to the JSON file; the console shows `console_level` and
    above (default: the same), so a progress display can keep the terminal readable.
    """
    global _json_file
    if _json_file is not None:
        _json_file.close()
        _json_file = None
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        _json_file = json_path.open("a", buffering=1)

    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,  # `exc_info` becomes the traceback's text
    ]
    console = structlog.processors.LogfmtRenderer(
        key_order=["timestamp", "level", "event"], drop_missing=True
    )
    to_json = structlog.processors.JSONRenderer()

    shown = logging.getLevelNamesMapping()[(console_level or level).upper()]

    def tee(logger: object, method: str, event: dict) -> str:
        if _json_file is not None:
            _json_file.write(to_json(logger, method, dict(event)) + "\n")
        if logging.getLevelNamesMapping()[method.upper().replace("EXCEPTION", "ERROR")] < shown:
            raise structlog.DropEvent
        return console(logger, method, event)

    structlog.configure(
        processors=[*shared, tee],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
