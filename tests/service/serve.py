"""`python -m tests.service.serve ARGS` = `harness serve ARGS`, with the schedules stand-in
installed first when the real module is not there yet (see conftest)."""

from __future__ import annotations

import tests.service.conftest  # noqa: F401 - installs the stand-in if needed
from harness.cli import app

if __name__ == "__main__":
    app(["serve", *__import__("sys").argv[1:]])
