"""`python -m router`: parse flags/env, configure logging, run until SIGTERM."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from router.app import Router
from router.config import load_config
from router.log import configure_logging


def main(argv: Sequence[str] | None = None) -> int:
    config = load_config(argv)
    configure_logging(config.log_level, config.log_format)
    try:
        import uvloop  # optional: faster event loop where installed

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(Router(config).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
