"""`harness list` and `harness validate`: the scenario catalogue and what it names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.cli.common import (
    FAILED,
    ContractFile,
    RunDir,
    ScenariosDir,
    _catalogue,
    _contract,
    _fail,
    _load_target,
    _resolve_target,
    bad_files,
    bad_flag,
    console,
    err,
    scenarios_dir,
)
from harness.config import Target
from harness.contract import Contract, default_contract_path
from harness.coverage_rules import catalogue_coverage_problems
from harness.durations import format_duration
from harness.output import cell, say
from harness.paths import deploy_dir
from harness.scenario import Scenario, catalogue_clashes, id_order
from harness.validate import (
    capability,
    catalogue_problems,
    contract_problems,
    cross_check,
    file_kind,
    rule_floors,
    rule_problems,
)
from harness.yamlfile import FileProblems, load_yaml


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
            cell(row["id"]),
            cell(", ".join(row["aliases"])),
            cell(row["title"]),
            cell(", ".join(row["faults"])),
            cell(", ".join(row["alerts"])),
        )
    console.print(table)


def validate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="scenario, contract or target files, told apart by their content [every "
            "scenario of --scenarios, the contract]"
        ),
    ] = None,
    scenarios: ScenariosDir = None,
    contract: ContractFile = None,
    target: Annotated[
        list[Path] | None,
        typer.Option(
            "--target",
            help="target file, repeatable: which scenarios it cannot run, and why [the local "
            "stack's target.yaml, if one is up]",
        ),
    ] = None,
    run_dir: RunDir = None,
) -> None:
    """Check scenario files, the alerting contract and target files, and what they name:
    alerts, metrics, labels, PromQL, dashboards and panels, receivers, proxies; print each
    rule's floor beside its contract objective. Exit 1 on a problem, 2 on a file that cannot
    be read. An external target that cannot run a scenario (a process fault, a missing proxy)
    is listed, not failed."""
    kinds = _classify(files or [])
    contracts = kinds["contract"] + ([contract] if contract else [])
    if len(contracts) > 1:
        bad_flag("--contract", f"one contract at a time, got {', '.join(map(str, contracts))}")
    contract_path = contracts[0] if contracts else default_contract_path()
    promises = _contract(contract_path)
    given = kinds["scenario"]
    catalogue = _catalogue(scenarios, given or None)  # cluster/ included
    targets = [_load_target(t) for t in [*kinds["target"], *(target or [])]]
    if not targets:
        local = _resolve_target(None, run_dir)
        targets = [local] if local else []
    deploy = deploy_dir()
    try:
        problems = rule_problems(deploy) + cross_check(catalogue, deploy, promises, None)
        if given:
            problems += catalogue_clashes(catalogue, scenarios_dir(scenarios))
        whole = not given
        if whole or kinds["contract"]:
            problems += contract_problems(promises, contract_path, deploy)
        if whole:
            problems += catalogue_problems(catalogue, deploy)
            problems += catalogue_coverage_problems(catalogue, deploy)
        for spec in targets:
            if spec.kind == "local":  # the local stack has every proxy: a gap is a typo
                with_target = cross_check(catalogue, deploy, promises, spec)
                problems += [p for p in with_target if p not in problems]
    except FileProblems as exc:  # a file of deploy/ that cannot be read
        raise bad_files(exc) from None
    for problem in problems:
        say(str(problem), to=err)
    if whole or kinds["contract"]:
        _print_floors(promises, deploy)
    cannot = 0
    for spec in targets:
        if spec.kind != "local":
            cannot += _print_capability(catalogue, spec)
    names = ", ".join(t.name for t in targets)
    note = f"target {names}" if targets else "no target (proxies not checked)"
    if problems:
        raise _fail(f"{len(problems)} problem(s) in {len(catalogue)} scenario(s); {note}", FAILED)
    say(
        f"{len(catalogue)} scenario(s) valid against the alerting contract, the rules, the "
        f"metric contract, the dashboards and {note}"
        + (f" ({cannot} cannot run there, listed above)" if cannot else "")
    )


def _classify(files: list[Path]) -> dict[str, list[Path]]:
    """Positional files by kind (scenario, contract, target), read through the input layer."""
    kinds: dict[str, list[Path]] = {"scenario": [], "contract": [], "target": []}
    problems = []
    for path in files:
        try:
            data, _ = load_yaml(path)
        except FileProblems as exc:
            problems += exc.problems
            continue
        kinds[file_kind(data)].append(path)
    if problems:
        raise bad_files(FileProblems(problems))
    return kinds


def _print_floors(contract: Contract, deploy: Path) -> None:
    table = Table(
        title="each rule's floor (scrape + evaluation + for) against its contract objective, "
        "production time",
        title_justify="left",
    )
    for column in ("alert", "objective", "floor", "slack", "floor from"):
        table.add_column(column)
    for name, floor, objective, how in rule_floors(contract, deploy):
        slack = objective - floor
        shown = format_duration(slack) if slack >= 0 else f"-{format_duration(-slack)}"
        table.add_row(
            cell(name),
            cell(format_duration(objective)),
            cell(format_duration(floor)),
            cell(shown, "red" if slack < 0 else None),
            cell(how),
        )
    console.print(table)


def _print_capability(catalogue: dict[str, tuple[Scenario, Path]], spec: Target) -> int:
    gaps = capability(catalogue, spec)
    runnable = len(catalogue) - len(gaps)
    say(
        f"target {spec.name} ({spec.kind}): can run {runnable} of {len(catalogue)} scenario(s)"
        + (f"; cannot run {len(gaps)}:" if gaps else "")
    )
    for scenario_id in sorted(gaps, key=id_order):
        say(f"  {scenario_id}: {'; '.join(gaps[scenario_id])}")
    return len(gaps)


def register(app: typer.Typer) -> None:
    """Add this group's commands to `harness`."""
    app.command("list", short_help="the scenario catalogue, variants included")(list_scenarios)
    app.command(short_help="check scenario, contract and target files and what they name")(validate)
