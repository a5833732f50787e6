"""`harness run` (and its dry run) and `harness heal`."""

from __future__ import annotations

import getpass
from functools import partial
from pathlib import Path
from typing import Annotated

import anyio
import typer

from harness.cli.common import (
    ContractFile,
    RunDir,
    ScenariosDir,
    TargetFile,
    _catalogue,
    _contract,
    _fail,
    _heal_targets,
    _require_target,
    _resolve_target,
    _slot_count,
    console,
    err,
)
from harness.config import PROFILES, Profile, Target, load_target
from harness.contract import Contract
from harness.durations import format_duration
from harness.faults.lock import TargetLocked
from harness.logs import configure_logging
from harness.paths import deploy_dir
from harness.paths import run_dir as resolve_run_dir
from harness.plan import plan_for
from harness.scenario import Scenario, UnknownScenarios, select_scenarios
from harness.stack import slots as slot_stacks
from harness.stack.stack import LocalStack, StackError
from harness.validate import cross_check


def _select(
    catalogue: dict[str, tuple[Scenario, Path]],
    ids: list[str],
    run_all: bool,
    variants: bool = False,
) -> list[Scenario]:
    if not run_all and not ids:
        raise _fail("name scenario IDs to run, or --all", 2)
    try:
        return select_scenarios(catalogue, ids, run_all, variants)
    except UnknownScenarios as exc:
        raise _fail(str(exc), 2) from None


def _both(production: float, on_target: float, factor: float) -> str:
    """`15m` alone at factor 1, else `15m (30s here)`."""
    shown = format_duration(production)
    return shown if factor == 1 else f"{shown} ({format_duration(round(on_target, 3))} here)"


def _print_plan(scenarios: list[Scenario], name: str, profile: Profile, contract: Contract) -> None:
    factor = profile.time_compression
    console.print(
        f"target {name}, profile {profile.name}: time compression ×{factor:g} "
        "(durations are production time; the target's clock in brackets)"
    )
    for s in scenarios:
        plan, t = plan_for(s, profile), s.timeouts
        longest = s.fault_window + t.baseline + t.heal + t.recover
        console.print(f"\n[bold]{s.id}[/] {s.title}" + (" [exclusive]" if s.exclusive else ""))
        if s.boundary:
            console.print(f"  boundary: just {s.boundary.side} the threshold of {s.boundary.alert}")
        console.print(f"  workload: {s.workload.rate:g} msg/s, mix {s.workload.mix.model_dump()}")
        console.print(
            f"  preflight ≤{_both(t.preflight, plan.preflight_s, factor)} → baseline "
            f"{_both(t.baseline, plan.baseline_s, factor)} → inject"
        )
        for i, (f, p) in enumerate(zip(s.faults, plan.faults, strict=True)):
            what = {
                k: v
                for k, v in f.model_dump(mode="json", exclude_none=True).items()
                if k not in ("kind", "start", "duration", "why")
            }
            console.print(
                f"  fault {i}: {f.kind} at +{_both(f.start, p.start_s, factor)} for "
                f"{_both(f.duration, p.duration_s, factor)}  {what}"
            )
        console.print(
            f"  heal ≤{_both(t.heal, plan.heal_s, factor)} → recover "
            f"≤{_both(t.recover, plan.recover_s, factor)} → verdict "
            f"(at most {_both(longest, plan.total_s, factor)})"
        )
        for m in s.expect.metrics:
            cond = {k: v for k, v in m.model_dump(exclude_none=True).items() if k not in ("query",)}
            console.print(f"  check metric: {m.query}  {cond}")
        for alert in s.expect.alerts.fire:
            entry = contract.get(alert)
            promise = "NOT IN THE CONTRACT"
            if entry:
                within = _both(entry.detect_within, profile.compress(entry.detect_within), factor)
                promise = f"fires within {within}, notifies {entry.receiver}"
            console.print(f"  check alert fires: {alert}  ({promise})")
        if s.expect.alerts.forbid:
            console.print(f"  check alerts stay silent: {', '.join(s.expect.alerts.forbid)}")
        if s.expect.delivery:
            console.print(f"  check delivery: {s.expect.delivery.model_dump()}")
        for p in s.expect.dashboards:
            console.print(f"  check panel: {p.dashboard} / {p.panel} (moves {p.move})")


def run(
    ids: Annotated[list[str] | None, typer.Argument(help="scenario IDs or aliases")] = None,
    run_all: Annotated[bool, typer.Option("--all", help="every scenario in the catalogue")] = False,
    target: Annotated[
        list[Path] | None,
        typer.Option("--target", help="target file, repeatable: one slot each [the local stack]"),
    ] = None,
    run_dir: RunDir = None,
    scenarios: ScenariosDir = None,
    out: Annotated[Path | None, typer.Option("--out", help="output directory for the run")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan, touch nothing (no stack needed)")
    ] = False,
    profile: Annotated[
        str | None,
        typer.Option(help=f"dry run: plan on this profile's clock ({', '.join(PROFILES)})"),
    ] = None,
    variants: Annotated[
        bool, typer.Option("--variants", help="also the variants of the named scenarios")
    ] = False,
    slots: Annotated[
        str | None,
        typer.Option(
            help="local stack: isolated stacks to run in parallel, a number or `auto` [every "
            "slot that is up]; slots not up yet are started for the run and stopped after it"
        ),
    ] = None,
    contract: ContractFile = None,
) -> None:
    """Run scenarios against the target: heal leftovers, lock, inject, observe, heal, judge."""
    catalogue = _catalogue(scenarios)
    chosen = _select(catalogue, ids or [], run_all, variants)
    promises = _contract(contract)
    files = target or []
    if dry_run:
        spec = _resolve_target(files[0] if files else None, run_dir) if profile is None else None
        if profile is not None and profile not in PROFILES:
            raise _fail(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}", 2)
        clock = spec.profile if spec else PROFILES[profile or "local"]
        problems = cross_check(
            {s.id: catalogue[s.id] for s in chosen}, deploy_dir(), promises, spec
        )
        for problem in problems:
            err.print(str(problem), highlight=False)
        _print_plan(chosen, spec.name if spec else f"(none, profile {clock.name})", clock, promises)
        raise typer.Exit(2 if problems else 0)
    specs, started = _run_targets(files, run_dir, slots)
    try:
        problems = cross_check(
            {s.id: catalogue[s.id] for s in chosen}, deploy_dir(), promises, specs[0]
        )
        if problems:
            for problem in problems:
                err.print(str(problem), highlight=False)
            raise _fail(f"{len(problems)} problem(s) in the chosen scenarios", 2)
        from harness.runner import run_scenarios

        # uvloop: one process drives every slot's workload, taps and pollers.
        code = anyio.run(
            run_scenarios, chosen, specs, promises, out, backend_options={"use_uvloop": True}
        )
    finally:
        slot_stacks.down(started)
    raise typer.Exit(code)


def _run_targets(
    files: list[Path], run_dir: Path | None, slots: str | None
) -> tuple[list[Target], list[LocalStack]]:
    """The targets of a run (one per slot), and the slots started for it (to stop after)."""
    if files:
        if slots is not None and _slot_count(slots) != len(files):
            raise _fail("against target files there is one slot per --target; drop --slots", 2)
        specs = [_require_target(f, run_dir) for f in files]
        return specs, []
    first = _require_target(None, run_dir)
    if first.kind != "local" or not first.run_dir:
        return [first], []
    directory = resolve_run_dir(run_dir)
    have = slot_stacks.existing(directory)
    wanted = _slot_count(slots) if slots is not None else len(have)
    started: list[LocalStack] = []
    if len(have) < wanted:
        model = have[0]
        try:
            started = anyio.run(
                partial(
                    slot_stacks.up,
                    directory,
                    wanted,
                    profile=model.ctx.profile,
                    options=model.ctx.options,
                    deploy_dir=model.ctx.deploy_dir,
                )
            )
        except StackError as exc:
            raise _fail(f"could not start the slots for this run: {exc}") from None
        have = slot_stacks.existing(directory)
    return [load_target(s.target_path) for s in have[:wanted]], started


def heal(
    target: TargetFile = None,
    run_dir: RunDir = None,
    forget: Annotated[
        str | None,
        typer.Option(
            help="clear this journal entry without proof it is gone (an operator's decision; "
            "recorded in the next run's evidence)"
        ),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="why --forget is safe (required)")] = None,
) -> None:
    """Heal every fault a killed run left on the target (every slot of the local stack)."""
    configure_logging()
    specs = _heal_targets(target, run_dir)
    from harness.runner import forget_fault, heal_target

    if forget is not None:
        if not reason or not reason.strip():
            raise _fail("--forget needs --reason: say why the entry is safe to clear", 2)
        for spec in specs:
            try:
                entry = forget_fault(spec, forget, reason.strip(), getpass.getuser())
            except KeyError:
                continue
            except TargetLocked as exc:
                raise _fail(str(exc), 1) from None
            console.print(
                f"forgot {entry['key']} ({entry['entry'].get('kind')}) on {spec.name}; the next "
                "run's evidence records it"
            )
            return
        raise _fail(f"no journal entry {forget!r} on {', '.join(s.name for s in specs)}", 1)
    outcomes = []
    for spec in specs:
        try:
            outcomes += anyio.run(heal_target, spec)
        except TargetLocked as exc:
            raise _fail(str(exc)) from None
    if not outcomes:
        noun = "target" if len(specs) == 1 else "targets"
        console.print(f"nothing to heal on {noun} {', '.join(s.name for s in specs)}")
        return
    for o in outcomes:
        state = "[green]healed[/]" if o.healed else "[red]NOT healed[/]"
        why = f": {'; '.join(o.errors)}" if o.errors else ""
        console.print(f"{o.key} ({o.kind}): {state} by {o.method} in {o.seconds:g}s{why}")
    unhealed = [o for o in outcomes if not o.healed]
    if unhealed:
        err.print(
            "absence could not be proven for: "
            + ", ".join(o.key for o in unhealed)
            + ". Check the target by hand; if the fault is gone, clear the entry with "
            "`harness heal --forget KEY --reason TEXT`."
        )
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this group's commands to `harness`."""
    app.command()(run)
    app.command()(heal)
