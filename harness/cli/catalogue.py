"""`harness list` and `harness validate`: the scenario catalogue and what it names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.cli.common import (
    ContractFile,
    RunDir,
    ScenariosDir,
    TargetFile,
    _catalogue,
    _contract,
    _fail,
    _resolve_target,
    console,
    err,
)
from harness.contract import default_contract_path
from harness.paths import deploy_dir
from harness.scenario import id_order
from harness.validate import catalogue_problems, contract_problems, cross_check, rule_problems


def list_scenarios(
    scenarios: ScenariosDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Print the scenario catalogue: id, aliases, title, fault kinds, alerts expected."""
    catalogue = _catalogue(scenarios)
    rows = [
        {
            "id": s.id,
            "aliases": s.aliases,
            "title": s.title,
            "faults": sorted(
                {f.kind if f.kind != "toxic" else f"toxic:{f.type}" for f in s.faults}
            ),
            "alerts": s.expect.alerts.fire,
            "boundary": s.boundary.model_dump() if s.boundary else None,
            "file": str(path),
        }
        for s, path in sorted(catalogue.values(), key=lambda item: id_order(item[0].id))
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} scenarios", title_justify="left")
    for column in ("id", "aliases", "title", "faults", "alerts expected"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["id"],
            ", ".join(row["aliases"]),
            row["title"],
            ", ".join(row["faults"]),
            ", ".join(row["alerts"]),
        )
    console.print(table)


def validate(
    files: Annotated[
        list[Path] | None, typer.Argument(help="scenario files [every file of --scenarios]")
    ] = None,
    scenarios: ScenariosDir = None,
    contract: ContractFile = None,
    target: TargetFile = None,
    run_dir: RunDir = None,
) -> None:
    """Check scenario files, the alerting contract, and what they name: alerts, metrics,
    labels, proxies, and whether each rule can meet its contract objective."""
    catalogue = _catalogue(scenarios, files)
    promises = _contract(contract)
    spec = _resolve_target(target, run_dir)
    problems = rule_problems(deploy_dir()) + cross_check(catalogue, deploy_dir(), promises, spec)
    if not files:
        problems += contract_problems(promises, contract or default_contract_path(), deploy_dir())
        problems += catalogue_problems(catalogue, deploy_dir())
    for problem in problems:
        err.print(str(problem), highlight=False)
    note = f"target {spec.name}" if spec else "no target (proxies not checked)"
    if problems:
        raise _fail(f"{len(problems)} problem(s) in {len(catalogue)} scenario(s); {note}", 1)
    console.print(
        f"{len(catalogue)} scenario(s) valid against the alerting contract, the rules, the "
        f"metric contract and {note}"
    )


def register(app: typer.Typer) -> None:
    """Add this group's commands to `harness`."""
    app.command("list")(list_scenarios)
    app.command()(validate)
