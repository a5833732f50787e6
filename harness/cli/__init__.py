"""The `harness` command line: one module per command group, registered here."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from harness.cli import catalogue, run, stack
from harness.output import fit_to_output
from harness.rejudge import command as _rejudge
from harness.report.cli import register as _register_report
from harness.service.cli import register as register_service

HELP = """Chaos harness for NATS JetStream: faults through Toxiproxy, verdicts from Prometheus and
Alertmanager, evidence for reviews.

\b
Exit codes (every command):
  0  done: every verdict passed, every check was clean
  1  a verdict or a check failed (a scenario, `validate`'s cross-checks, `coverage --claimed`)
  2  bad input: a file, a flag or an ID (the message names the file, line and field)
  3  could not evaluate: a stack, a target or a tool it needs was missing or did not answer
"""


def _version() -> str:
    try:
        return version("jetstream-chaos-harness")
    except PackageNotFoundError:  # run from a tree that was never installed
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        print(f"harness {_version()}")
        raise typer.Exit(0)


app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=HELP,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,  # a bug's traceback must not print tokens
    context_settings={
        "help_option_names": ["-h", "--help"],
        "max_content_width": 100,
        # in a pipe click assumes 80 columns and cuts each command's summary short
        "terminal_width": None if sys.stdout.isatty() else 100,
    },
)


def _name_metavars(command: typer.core.TyperGroup | typer.core.TyperCommand) -> None:
    """`--out OUT`, `ids... IDS...` instead of Typer's type labels (`<path>`, `<list[str]>`)."""
    for param in command.params:
        if param.metavar is None and not getattr(param, "is_flag", False):
            param.metavar = (param.name or "value").upper()
            if isinstance(param, typer.core.TyperArgument):  # its help would repeat the name
                param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
    for sub in getattr(command, "commands", {}).values():
        _name_metavars(sub)


@app.callback()
def main(
    ctx: typer.Context,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="print the version and exit",
            callback=_show_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    fit_to_output()
    _name_metavars(ctx.command)  # type: ignore[arg-type]


for group in (stack, catalogue, run):
    group.register(app)
register_service(app)
_register_report(app)
app.command("rejudge", short_help="judge a stored run again (optionally a revised contract)")(
    _rejudge
)
