"""What every command group shares: the consoles, the error exit, and the options and loaders
of the catalogue, the contract and the target."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness.config import Target, load_target
from harness.contract import Contract, load_contract
from harness.paths import project_root
from harness.paths import run_dir as resolve_run_dir
from harness.scenario import Scenario, load_scenarios
from harness.stack import slots as slot_stacks
from harness.yamlfile import FileProblems

console = Console()
err = Console(stderr=True, soft_wrap=True)

RunDir = Annotated[
    Path | None,
    typer.Option("--run-dir", help="local stack directory [env HARNESS_RUN_DIR; ./.harness/local]"),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _slot_count(text: str) -> int:
    if text == "auto":
        return slot_stacks.default_slots()
    if not text.isdigit() or not 1 <= int(text) <= slot_stacks.MAX_SLOTS:
        raise _fail(f"--slots must be auto or 1..{slot_stacks.MAX_SLOTS}, got {text!r}", 2)
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


def _catalogue(
    directory: Path | None, files: list[Path] | None = None
) -> dict[str, tuple[Scenario, Path]]:
    try:
        return load_scenarios(files or directory or project_root() / "scenarios")
    except FileProblems as exc:
        raise _fail(str(exc), 2) from None


def _contract(path: Path | None) -> Contract:
    try:
        return load_contract(path)
    except FileProblems as exc:
        raise _fail(str(exc), 2) from None


def _resolve_target(target: Path | None, run_dir: Path | None) -> Target | None:
    """The given target file, else the local stack's if one is up, else None."""
    path = target or resolve_run_dir(run_dir) / "target.yaml"
    if target is None and not path.exists():
        return None
    try:
        return load_target(path)
    except FileProblems as exc:
        raise _fail(str(exc), 2) from None


def _require_target(target: Path | None, run_dir: Path | None) -> Target:
    spec = _resolve_target(target, run_dir)
    if spec is None:
        raise _fail(
            "no target: start the local stack (`harness up --detach`) or pass --target FILE", 2
        )
    return spec


def _heal_targets(target: Path | None, run_dir: Path | None) -> list[Target]:
    """The given target, or every slot of the local stack."""
    if target is not None:
        return [_require_target(target, run_dir)]
    stacks = slot_stacks.existing(resolve_run_dir(run_dir))
    if not stacks:
        return [_require_target(None, run_dir)]
    return [load_target(s.target_path) for s in stacks]
