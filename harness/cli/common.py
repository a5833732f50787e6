"""What every command group shares: exit codes, the error exit, and the options and loaders of
the catalogue, the contract and the target (every file read through `harness.yamlfile`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from harness.config import Target, load_target
from harness.contract import Contract, load_contract
from harness.output import console, err, error
from harness.paths import project_root
from harness.paths import run_dir as resolve_run_dir
from harness.scenario import Scenario, load_scenarios
from harness.stack import slots as slot_stacks
from harness.yamlfile import FileProblems

__all__ = ["console", "err"]

OK, FAILED, BAD_INPUT, CANNOT_EVALUATE = 0, 1, 2, 3
"""Exit codes of every command: done; a verdict or check failed; bad input (a file, a flag, an
ID); the harness could not evaluate (a stack, a target or a tool it needs was missing)."""

RunDir = Annotated[
    Path | None,
    typer.Option("--run-dir", help="local stack directory [env HARNESS_RUN_DIR; ./.harness/local]"),
]


def _fail(message: str, code: int) -> typer.Exit:
    """Print `error: message` (verbatim) and return the exit to raise."""
    error(message)
    return typer.Exit(code)


def bad_files(exc: FileProblems) -> typer.Exit:
    """Every problem of unreadable input on its own line; exit 2."""
    for problem in exc.problems:
        error(str(problem))
    return typer.Exit(BAD_INPUT)


def bad_flag(flag: str, message: str) -> NoReturn:
    raise _fail(f"{flag}: {message}", BAD_INPUT)


def _slot_count(text: str) -> int:
    if text == "auto":
        return slot_stacks.default_slots()
    if not text.isdigit() or not 1 <= int(text) <= slot_stacks.MAX_SLOTS:
        bad_flag("--slots", f"must be auto or 1..{slot_stacks.MAX_SLOTS}, got {text!r}")
    return int(text)


ScenariosDir = Annotated[
    Path | None, typer.Option("--scenarios", help="scenario directory [./scenarios of the project]")
]
ContractFile = Annotated[
    Path | None,
    typer.Option("--contract", help="alerting contract [scenarios/alerting-contract.yaml]"),
]
TargetFile = Annotated[
    Path | None, typer.Option("--target", help="target file [the local stack's target.yaml]")
]


def scenarios_dir(directory: Path | None) -> Path:
    """The catalogue directory: --scenarios (which must be a directory) or the project's."""
    if directory is None:
        return project_root() / "scenarios"
    if not directory.exists():
        bad_flag("--scenarios", f"{directory}: no such directory")
    if not directory.is_dir():
        bad_flag("--scenarios", f"{directory}: not a directory")
    return directory


def _catalogue(
    directory: Path | None, files: list[Path] | None = None
) -> dict[str, tuple[Scenario, Path]]:
    source = files or scenarios_dir(directory)
    try:
        found = load_scenarios(source)
    except FileProblems as exc:
        raise bad_files(exc) from None
    if not found:
        bad_flag("--scenarios", f"{source}: no scenario files (*.yaml) in it")
    return found


def _contract(path: Path | None) -> Contract:
    try:
        return load_contract(path)
    except FileProblems as exc:
        raise bad_files(exc) from None


def _load_target(path: Path) -> Target:
    try:
        return load_target(path)
    except FileProblems as exc:
        raise bad_files(exc) from None


def _resolve_target(target: Path | None, run_dir: Path | None) -> Target | None:
    """The given target file, else the local stack's if one is up, else None."""
    path = target or resolve_run_dir(run_dir) / "target.yaml"
    if target is None and not path.exists():
        return None
    return _load_target(path)


def _require_target(target: Path | None, run_dir: Path | None) -> Target:
    spec = _resolve_target(target, run_dir)
    if spec is None:
        raise _fail(
            "no target: start the local stack (`harness up --detach`) or pass --target FILE",
            CANNOT_EVALUATE,
        )
    return spec


def _heal_targets(target: Path | None, run_dir: Path | None) -> list[Target]:
    """The given target, or every slot of the local stack."""
    if target is not None:
        return [_require_target(target, run_dir)]
    stacks = slot_stacks.existing(resolve_run_dir(run_dir))
    if not stacks:
        return [_require_target(None, run_dir)]
    return [_load_target(s.target_path) for s in stacks]
