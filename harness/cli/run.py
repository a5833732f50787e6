"""`harness run` (and its dry run) and `harness heal`."""

from __future__ import annotations

import getpass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer
from rich.text import Text

from harness.cli.common import (
    BAD_INPUT,
    CANNOT_EVALUATE,
    FAILED,
    OK,
    ContractFile,
    RunDir,
    ScenariosDir,
    TargetFile,
    _catalogue,
    _contract,
    _fail,
    _heal_targets,
    _load_target,
    _require_target,
    _resolve_target,
    _slot_count,
    bad_files,
    bad_flag,
    console,
    err,
)
from harness.config import PROFILES, Profile, Target
from harness.contract import Contract, default_contract_path
from harness.durations import format_duration
from harness.faults.lock import TargetLocked
from harness.logs import configure_logging
from harness.output import cell, say
from harness.paths import deploy_dir, output_dir_problem
from harness.paths import run_dir as resolve_run_dir
from harness.plan import auto_cluster_slots, plan_for, slot_plan, unplaceable
from harness.scenario import Scenario, UnknownScenarios, select_scenarios
from harness.stack import slots as slot_stacks
from harness.stack.stack import LocalStack, StackError
from harness.validate import cross_check, receiver_problems
from harness.yamlfile import FileProblems, Problem, load_yaml


def _select(
    catalogue: dict[str, tuple[Scenario, Path]],
    ids: list[str],
    run_all: bool,
    variants: bool = False,
) -> list[Scenario]:
    if run_all and ids:
        bad_flag("--all", f"name scenario IDs ({' '.join(ids)}) or --all, not both")
    if not run_all and not ids:
        raise _fail("name scenario IDs to run, or --all", BAD_INPUT)
    try:
        return select_scenarios(catalogue, ids, run_all, variants)
    except UnknownScenarios as exc:
        raise _fail(str(exc), BAD_INPUT) from None


def _check_out(out: Path | None) -> None:
    """--out must be a directory (or not exist yet) that this user can write."""
    problem = output_dir_problem(out) if out is not None else None
    if problem:
        bad_flag("--out", problem)


def _both(production: float, on_target: float, factor: float) -> str:
    """`15m` alone at factor 1, else `15m (30s here)`."""
    shown = format_duration(production)
    return shown if factor == 1 else f"{shown} ({format_duration(round(on_target, 3))} here)"


def _fields(data: dict[str, Any], prefix: str = "") -> str:
    """`{'attributes': {'latency': 750}, 'proxy': 'x'}` → `attributes.latency=750 proxy=x`."""
    parts = []
    for key, value in data.items():
        if isinstance(value, dict):
            parts.append(_fields(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            if value:
                parts.append(f"{prefix}{key}={','.join(map(str, value))}")
        else:
            parts.append(
                f"{prefix}{key}={value:g}" if isinstance(value, float) else f"{prefix}{key}={value}"
            )
    return " ".join(p for p in parts if p)


def _print_plan(scenarios: list[Scenario], name: str, profile: Profile, contract: Contract) -> None:
    factor = profile.time_compression
    say(
        f"target {name}, profile {profile.name}: time compression ×{factor:g} "
        "(durations are production time; the target's clock in brackets)"
    )
    for s in scenarios:
        plan, t = plan_for(s, profile), s.timeouts
        longest = s.fault_window + t.baseline + t.heal + t.recover
        say("")
        say(f"{s.id} {s.title}" + (" (exclusive)" if s.exclusive else ""), "bold")
        if s.boundary:
            say(f"  boundary: just {s.boundary.side} the threshold of {s.boundary.alert}")
        mix = ", ".join(f"{k} {v:.0%}" for k, v in s.workload.mix.model_dump().items() if v)
        say(f"  workload: {s.workload.rate:g} msg/s, mix {mix}")
        if s.nats is not None:  # a local slot restarts its NATS nodes with it in preflight
            say(f"  nats: sync_interval {s.nats.sync_interval} (servers restarted if needed)")
        say(
            f"  preflight ≤{_both(t.preflight, plan.preflight_s, factor)} → baseline "
            f"{_both(t.baseline, plan.baseline_s, factor)} → inject"
        )
        for i, (f, p) in enumerate(zip(s.faults, plan.faults, strict=True)):
            what = {
                k: v
                for k, v in f.model_dump(mode="json", exclude_none=True).items()
                if k not in ("kind", "start", "duration", "why")
            }
            say(
                f"  fault {i}: {f.kind} at +{_both(f.start, p.start_s, factor)} for "
                f"{_both(f.duration, p.duration_s, factor)}  {_fields(what)}"
            )
        say(
            f"  heal ≤{_both(t.heal, plan.heal_s, factor)} → recover "
            f"≤{_both(t.recover, plan.recover_s, factor)} → verdict "
            f"(at most {_both(longest, plan.total_s, factor)})"
        )
        for m in s.expect.metrics:
            cond = m.model_dump(mode="json", exclude_none=True, exclude={"query"})
            say(f"  check metric: {m.query}  {_fields(cond)}")
        for alert in s.expect.alerts.fire:
            entry = contract.get(alert)
            promise = "NOT IN THE CONTRACT"
            if entry:
                override = s.expect.alerts.contract.get(alert)
                detect = (override and override.detect_within) or entry.detect_within
                within = _both(detect, profile.compress(detect), factor)
                promise = f"fires within {within}, notifies {entry.receiver}"
                if detect != entry.detect_within:
                    contract_s = format_duration(entry.detect_within)
                    promise += f"; the scenario's allowance, the contract's is {contract_s}"
            say(f"  check alert fires: {alert}  ({promise})")
        if s.expect.alerts.forbid:
            say(f"  check alerts stay silent: {', '.join(s.expect.alerts.forbid)}")
        if s.expect.delivery:
            say(f"  check delivery: {_fields(s.expect.delivery.model_dump(mode='json'))}")
        if s.expect.data_loss:
            loss = _fields(s.expect.data_loss.model_dump(mode="json"))
            say(f"  check stream read back after heal: {loss}")
        for p in s.expect.dashboards:
            how = ", ".join(f"{r} {d}" for r, d in p.queries.items()) or f"moves {p.move}"
            say(f"  check panel: {p.dashboard} / {p.panel} ({how})")


def _print_slots(
    scenarios: list[Scenario], profile: Profile, topologies: list[str], why: str
) -> None:
    factor = profile.time_compression
    plan, left = slot_plan(scenarios, profile, topologies)
    kinds = ", ".join(f"{topologies.count(k)} {k}" for k in dict.fromkeys(topologies))
    say("")
    say(
        f"slot plan: {len(scenarios)} scenario(s) on {len(topologies)} slot(s), {kinds} ({why})",
        "bold",
    )
    ends = []
    for k, chosen in enumerate(plan):
        on_target = sum(plan_for(s, profile).total_s for s in chosen)
        ends.append(on_target)
        ids = ", ".join(s.id for s in chosen) or "idle"
        say(
            f"  slot {k} ({topologies[k]}): {ids}  "
            f"(at most {format_duration(round(on_target, 3))} here)"
        )
    if left:
        say(f"  no slot of their topology: {', '.join(s.id for s in left)}", "red")
    production = sum(
        s.fault_window + s.timeouts.baseline + s.timeouts.heal + s.timeouts.recover
        for s in scenarios
    )
    say(
        f"total: at most {format_duration(round(max(ends), 3))} on the target's clock "
        f"(each scenario's longest; they usually end sooner); the scenarios alone add up to "
        f"{_both(production, sum(plan_for(s, profile).total_s for s in scenarios), factor)}"
    )


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
    no_report: Annotated[
        bool, typer.Option("--no-report", help="skip the report (the evidence is written)")
    ] = False,
) -> None:
    """Run scenarios against the target: heal leftovers, lock, inject, observe, heal, judge,
    then write the evidence and its report."""
    catalogue = _catalogue(scenarios)
    chosen = _select(catalogue, ids or [], run_all, variants)
    promises = _contract(contract)
    files = target or []
    if profile is not None and profile not in PROFILES:
        bad_flag("--profile", f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    count = _slot_count(slots) if slots is not None else None
    if files and count is not None and count != len(files):
        bad_flag("--slots", "against target files there is one slot per --target; drop --slots")
    _check_out(out)
    if dry_run:
        spec = _resolve_target(files[0] if files else None, run_dir) if profile is None else None
        clock = spec.profile if spec else PROFILES[profile or "local"]
        problems = _problems({s.id: catalogue[s.id] for s in chosen}, promises, spec)
        for problem in problems:
            say(str(problem), to=err)
        for finding in _receiver_findings(chosen, promises, contract):
            say(f"note: {finding} (the notification checks would fail)", to=err)
        _print_plan(chosen, spec.name if spec else f"(none, profile {clock.name})", clock, promises)
        if len(chosen) > 1:
            _print_slots(chosen, clock, *_dry_slots(files, slots, spec, run_dir))
        if problems:
            raise _fail(f"{len(problems)} problem(s) in the chosen scenarios", BAD_INPUT)
        raise typer.Exit(OK)
    specs, started = _run_targets(files, run_dir, slots)
    try:
        misplaced = unplaceable(chosen, specs)
        if misplaced:
            for line in misplaced:
                say(line, to=err)
            raise _fail(f"{len(misplaced)} scenario(s) cannot run on this run's slots", BAD_INPUT)
        problems = _problems({s.id: catalogue[s.id] for s in chosen}, promises, specs[0])
        if problems:
            for problem in problems:
                say(str(problem), to=err)
            raise _fail(f"{len(problems)} problem(s) in the chosen scenarios", BAD_INPUT)
        from harness.runner import run_scenarios

        # uvloop: one process drives every slot's workload, taps and pollers.
        code = anyio.run(
            partial(run_scenarios, report=not no_report),
            chosen,
            specs,
            promises,
            out,
            backend_options={"use_uvloop": True},
        )
    finally:
        slot_stacks.down(started)
    raise typer.Exit(code)


def _problems(
    chosen: dict[str, tuple[Scenario, Path]], contract: Contract, target: Target | None
) -> list[Problem]:
    try:
        return cross_check(chosen, deploy_dir(), contract, target)
    except FileProblems as exc:  # a file of deploy/ that cannot be read
        raise bad_files(exc) from None


def _receiver_findings(
    chosen: list[Scenario], promises: Contract, contract: Path | None
) -> list[Problem]:
    """Contract receivers of the alerts these scenarios fire that `deploy/`'s Alertmanager
    config lacks: a finding about the config, shown with the plan, never an expectation."""
    fired = {a for s in chosen for a in s.expect.alerts.fire}
    path = contract or default_contract_path()
    try:
        _, root = load_yaml(path)
        found = receiver_problems(promises, path, root, deploy_dir())
    except FileProblems as exc:
        raise bad_files(exc) from None
    return [p for p in found if p.field.split(".")[1] in fired]


def _dry_slots(
    files: list[Path], slots: str | None, spec: Target | None, run_dir: Path | None
) -> tuple[list[str], str]:
    """The topology of each slot a run would have, and why."""
    if files:
        return [_load_target(f).topology.kind for f in files], "one per --target"
    if slots is not None and slots != "auto":
        return ["single"] * _slot_count(slots), "--slots"
    if slots is None and spec is not None and spec.kind == "local":
        have = slot_stacks.existing(resolve_run_dir(run_dir))
        if have:
            kinds = [_load_target(s.target_path).topology.kind for s in have]
            return kinds, "the slots of the local stack that is up"
    if slots is None and spec is not None:
        return [spec.topology.kind], f"target {spec.name}"
    single = slot_stacks.default_slots()
    return (
        ["single"] * single + ["cluster"] * auto_cluster_slots(single),
        "what `harness up --slots auto` starts on this machine",
    )


def _run_targets(
    files: list[Path], run_dir: Path | None, slots: str | None
) -> tuple[list[Target], list[LocalStack]]:
    """The targets of a run (one per slot), and the slots started for it (to stop after)."""
    if files:
        if slots is not None and _slot_count(slots) != len(files):
            bad_flag("--slots", "against target files there is one slot per --target; drop --slots")
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
            raise _fail(f"could not start the slots for this run: {exc}", CANNOT_EVALUATE) from None
        have = slot_stacks.existing(directory)
    return [_load_target(s.target_path) for s in have[:wanted]], started


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
    if forget is not None and (not reason or not reason.strip()):
        bad_flag("--forget", "needs --reason: say why the entry is safe to clear")
    specs = _heal_targets(target, run_dir)
    from harness.runner import forget_fault, heal_target

    if forget is not None:
        assert reason is not None
        for spec in specs:
            try:
                entry = forget_fault(spec, forget, reason.strip(), getpass.getuser())
            except KeyError:
                continue
            except TargetLocked as exc:
                raise _fail(str(exc), CANNOT_EVALUATE) from None
            say(
                f"forgot {entry['key']} ({entry['entry'].get('kind')}) on {spec.name}; the next "
                "run's evidence records it"
            )
            return
        bad_flag("--forget", f"no journal entry {forget!r} on {', '.join(s.name for s in specs)}")
    outcomes = []
    for spec in specs:
        try:
            outcomes += anyio.run(heal_target, spec)
        except TargetLocked as exc:
            raise _fail(str(exc), CANNOT_EVALUATE) from None
    if not outcomes:
        noun = "target" if len(specs) == 1 else "targets"
        say(f"nothing to heal on {noun} {', '.join(s.name for s in specs)}")
        return
    for o in outcomes:
        state = cell("healed", "green") if o.healed else cell("NOT healed", "red")
        why = f": {'; '.join(o.errors)}" if o.errors else ""
        console.print(
            Text.assemble(f"{o.key} ({o.kind}): ", state, f" by {o.method} in {o.seconds:g}s{why}")
        )
    unhealed = [o for o in outcomes if not o.healed]
    if unhealed:
        say(
            "absence could not be proven for: "
            + ", ".join(o.key for o in unhealed)
            + ". Check the target by hand; if the fault is gone, clear the entry with "
            "`harness heal --forget KEY --reason TEXT`.",
            to=err,
        )
        raise typer.Exit(FAILED)


def register(app: typer.Typer) -> None:
    """Add this group's commands to `harness`."""
    app.command(short_help="run scenarios against a target (--dry-run: the plan)")(run)
    app.command(short_help="heal what a killed run left on the target")(heal)
