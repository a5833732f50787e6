"""`harness …` run in the test's own process (no interpreter start-up): the same Typer app
`python -m harness` runs, with its exit code and separate stdout and stderr, for unit tests
of what a command prints and returns. Tests that must prove process behaviour (signals, exit
on a lock another process holds, what importing a module pulls in) keep a real subprocess."""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator, Mapping
from contextlib import chdir, contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import structlog
from typer.testing import CliRunner


@dataclass(frozen=True)
class Ran:
    """What `subprocess.run(..., capture_output=True, text=True)` would have given."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@contextmanager
def _no_process_wide_side_effects() -> Iterator[None]:
    """Commands configure structlog once per process (onto the stderr the runner captures and
    then closes) and `harness serve` binds a port: neither may outlive the call here."""
    from harness.service import server

    def bind(*_: object, **__: object) -> None:
        raise AssertionError("harness serve got as far as binding its port")

    logging = structlog.get_config()
    try:
        with mock.patch.object(server, "serve", bind):
            yield
    finally:
        structlog.configure(**logging)


def harness(
    *argv: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    cwd: Path | None = None,
) -> Ran:
    """`harness ARGV` in-process, in `cwd` when given. `env`, when given, is the whole
    environment (as for a subprocess); an exception the command did not turn into an exit code
    comes back as exit 1 with its traceback on stderr, as the interpreter would print it."""
    overrides: dict[str, str | None] | None = None
    if env is not None:
        overrides = {name: None for name in os.environ if name not in env}
        overrides.update(env)
    from harness.cli import app

    with _no_process_wide_side_effects(), chdir(cwd or Path.cwd()):
        result = CliRunner().invoke(app, list(argv), env=overrides, input=input)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        stderr += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Ran(result.exit_code, result.stdout, stderr)
