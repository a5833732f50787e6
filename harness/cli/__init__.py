"""The `harness` command line: one module per command group, registered here.

Exit codes, the same for every command: 0 done (every verdict passed, every check was clean);
1 a verdict or a check failed; 2 bad input (a file, a flag, an ID), with a message naming the
file, line and field; 3 the harness could not evaluate (a stack, a target or a tool it needs
was not there or did not answer).
"""

from __future__ import annotations

import typer

from harness.cli import catalogue, run, serve, stack
from harness.report.cli import register as _register_report

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
for group in (stack, catalogue, run, serve):
    group.register(app)
_register_report(app)
