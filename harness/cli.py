"""The `harness` command line."""

from __future__ import annotations

import getpass
import json
import signal
import time
from functools import partial
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.console import Console
from rich.table import Table

from harness.config import PROFILES, Profile, Target, load_target
from harness.contract import Contract, default_contract_path, load_contract
from harness.durations import format_duration
from harness.faults.lock import TargetLocked
from harness.logs import configure_logging
from harness.paths import deploy_dir, project_root
from harness.paths import run_dir as resolve_run_dir
from harness.plan import plan_for, unplaceable
from harness.scenario import (
    Scenario,
    UnknownScenarios,
    id_order,
    load_scenarios,
    select_scenarios,
)
from harness.stack import slots as slot_stacks
from harness.stack.process import tail
from harness.stack.stack import ComponentStatus, LocalStack, StackError, StackOptions
from harness.target_check import check_target
from harness.validate import catalogue_problems, contract_problems, cross_check, rule_problems
from harness.yamlfile import FileProblems

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()
err = Console(stderr=True, soft_wrap=True)

RunDir = Annotated[
    Path | None,
    typer.Option("--run-dir", help="local stack directory [env HARNESS_RUN_DIR; ./.harness/local]"),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _show(statuses: list[ComponentStatus], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("component", "state", "pid", "url"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    for s in statuses:
        colour = "green" if s.state == "up" else "red"
        table.add_row(s.name, f"[{colour}]{s.state}[/]", str(s.pid or ""), s.url, s.detail)
    console.print(table)


def _as_json(title: str, kind: str, statuses: list[ComponentStatus]) -> str:
    return json.dumps(
        {
            "target": title,
            "kind": kind,
            "all_up": all(s.state == "up" for s in statuses),
            "components": [s.__dict__ for s in statuses],
        },
        indent=2,
    )


@app.command()
def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="return once ready")] = False,
    profile: Annotated[str, typer.Option(help=f"one of {', '.join(PROFILES)}")] = "local",
    router_fault_hook: Annotated[
        bool, typer.Option(help="start the router with its POST /faults hook")
    ] = True,
    router_readyz: Annotated[
        bool, typer.Option(help="let the router serve /readyz (readiness then also rests on it)")
    ] = True,
    slots: Annotated[
        str,
        typer.Option(
            help="how many isolated stacks (slots) to start: a number, or `auto` for what this "
            "machine can hold (two per core plus one, memory permitting)"
        ),
    ] = "auto",
    nats_cluster: Annotated[
        int,
        typer.Option(
            help="NATS servers per slot: 1 (a single server) or 3 (a JetStream cluster, every "
            "route and client link through Toxiproxy, R3 streams, the NATS exporter)"
        ),
    ] = 1,
    run_dir: RunDir = None,
) -> None:
    """Start the local stack (every slot); stay in the foreground until Ctrl-C unless
    --detach."""
    configure_logging()
    if profile not in PROFILES:
        raise _fail(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    directory = resolve_run_dir(run_dir)
    running = [s for s in slot_stacks.existing(directory) if anyio.run(_alive, s)]
    if running:
        raise _fail(
            f"a stack is already running in {running[0].run_dir} "
            f"({len(running)} slot(s)): run `harness down` first"
        )
    if nats_cluster not in (1, 3):
        raise _fail(f"--nats-cluster must be 1 or 3, got {nats_cluster}", 2)
    options = StackOptions(
        router_fault_hook=router_fault_hook,
        router_readyz=router_readyz,
        nats_cluster=nats_cluster,
    )
    # SIGTERM tears down like Ctrl-C does, also half-way through start-up.
    signal.signal(signal.SIGTERM, lambda *_: _raise_interrupt())
    try:
        started = anyio.run(
            partial(
                slot_stacks.up,
                directory,
                _slot_count(slots),
                profile=PROFILES[profile],
                options=options,
            )
        )
    except StackError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; everything started was stopped", 130) from None
    started.sort(key=lambda st: str(st.run_dir))
    if detach:
        _show_started(started)
        console.print("detached; stop it with `harness down`")
        return
    try:
        _show_started(started)
        _foreground(started)
    except KeyboardInterrupt:
        slot_stacks.down(started)
        console.print("stack stopped")


def _slot_count(text: str) -> int:
    if text == "auto":
        return slot_stacks.default_slots()
    if not text.isdigit() or not 1 <= int(text) <= slot_stacks.MAX_SLOTS:
        raise _fail(f"--slots must be auto or 1..{slot_stacks.MAX_SLOTS}, got {text!r}", 2)
    return int(text)


async def _alive(stack: LocalStack) -> bool:
    state = stack.read_state()
    return bool(state and any(r.alive() for r in stack.records(state)))


def _show_started(stacks: list[LocalStack]) -> None:
    for stack in stacks:
        target = stack.target()
        _show(anyio.run(stack.status), f"{slot_stacks.name(stack)}: local stack in {stack.run_dir}")
        console.print(f"target file: {stack.target_path}")
        console.print(f"Prometheus:   {target.prometheus_url}")
        console.print(f"Alertmanager: {target.alertmanager_url}")


def _foreground(stacks: list[LocalStack]) -> None:
    """Watch the processes until Ctrl-C/SIGTERM or a crash, then tear everything down."""
    console.print("running; Ctrl-C stops the stack")
    records = [
        (stack, record)
        for stack in stacks
        for state in [stack.read_state()]
        if state
        for record in stack.records(state)
    ]
    while True:
        time.sleep(0.5)
        dead = [(stack, r) for stack, r in records if not r.alive()]
        if dead:
            slot_stacks.down(stacks)
            stack, record = dead[0]
            raise _fail(
                f"component {record.name} of {slot_stacks.name(stack)} exited; the stack was "
                f"stopped\n--- last lines of {record.log} ---\n{tail(record.log)}"
            )


def _raise_interrupt() -> None:
    raise KeyboardInterrupt


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    target: Annotated[
        Path | None, typer.Option("--target", help="check an external stack's target file")
    ] = None,
    run_dir: RunDir = None,
) -> None:
    """Report each component (or each endpoint of --target) as up or down, and why."""
    if target is not None:
        try:
            spec = load_target(target)
        except FileProblems as exc:
            raise _fail(str(exc), 2) from None
        results = anyio.run(check_target, spec)
        statuses = [
            ComponentStatus(r.name, "up" if r.ok else "down", None, r.url, r.detail, "")
            for r in results
        ]
        title, kind = spec.name, spec.kind
        if as_json:
            print(_as_json(title, kind, statuses))
        else:
            _show(statuses, title)
        if not all(s.state == "up" for s in statuses):
            raise typer.Exit(1)
        return
    directory = resolve_run_dir(run_dir)
    stacks = slot_stacks.existing(directory)
    if not stacks:
        raise _fail(f"no local stack in {directory.resolve()} (no stack.json): run `harness up`")
    all_up, documents = True, []
    for stack in stacks:
        try:
            statuses = anyio.run(stack.status)
        except StackError as exc:
            raise _fail(str(exc)) from None
        title = f"local stack in {stack.run_dir}"
        all_up = all_up and all(s.state == "up" for s in statuses)
        if as_json:
            documents.append(json.loads(_as_json(title, "local", statuses)))
        else:
            _show(statuses, f"{slot_stacks.name(stack)}: {title}" if len(stacks) > 1 else title)
    if as_json:
        print(json.dumps(documents[0] if len(documents) == 1 else documents, indent=2))
    if not all_up:
        raise typer.Exit(1)


@app.command()
def down(run_dir: RunDir = None) -> None:
    """Stop everything `harness up` started in the run directory, every slot."""
    configure_logging()
    directory = resolve_run_dir(run_dir)
    stacks = slot_stacks.existing(directory)
    if not stacks:
        console.print(f"no local stack in {directory.resolve()}; nothing to stop")
        return
    try:
        stopped = slot_stacks.down(stacks)
    except StackError as exc:
        raise _fail(str(exc)) from None
    if len(stacks) == 1:
        stopped = [line.split(": ", 1)[1] for line in stopped]
    console.print(f"stopped: {'; '.join(stopped) if stopped else 'nothing was running'}")


@app.command("toxiproxy-server")
def toxiproxy_server(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8474,
    config: Annotated[
        Path | None, typer.Option(help="JSON file of proxies to create at start (as /populate)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="seed for toxicity rolls")] = None,
    proxy_metrics: Annotated[
        bool, typer.Option("--proxy-metrics", help="serve /metrics with Toxiproxy's names")
    ] = False,
) -> None:
    """Run the embedded Toxiproxy-compatible server (a drop-in for `toxiproxy-server`)."""
    from harness.toxiproxy_server.server import serve

    serve(host=host, port=port, config=config, seed=seed, proxy_metrics=proxy_metrics)


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


CLUSTER_SCENARIOS = project_root() / "scenarios" / "cluster"
"""The cluster scenarios (CL-…): beside the default catalogue, which runs on single-node slots;
run them with `--scenarios scenarios/cluster` on a cluster slot. `validate` checks both."""


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


@app.command("list")
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


@app.command()
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
    if not files and scenarios is None and CLUSTER_SCENARIOS.is_dir():
        catalogue |= _catalogue(CLUSTER_SCENARIOS)  # the whole catalogue, cluster included
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


def _require_target(target: Path | None, run_dir: Path | None) -> Target:
    spec = _resolve_target(target, run_dir)
    if spec is None:
        raise _fail(
            "no target: start the local stack (`harness up --detach`) or pass --target FILE", 2
        )
    return spec


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


@app.command()
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
        misplaced = unplaceable(chosen, specs)
        if misplaced:
            for line in misplaced:
                err.print(line, highlight=False)
            raise _fail(f"{len(misplaced)} scenario(s) cannot run on this run's slots", 2)
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


@app.command()
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


def _heal_targets(target: Path | None, run_dir: Path | None) -> list[Target]:
    """The given target, or every slot of the local stack."""
    if target is not None:
        return [_require_target(target, run_dir)]
    stacks = slot_stacks.existing(resolve_run_dir(run_dir))
    if not stacks:
        return [_require_target(None, run_dir)]
    return [load_target(s.target_path) for s in stacks]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address [127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [8090]")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="store and runs [./.harness/service]")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="service YAML: run_dir, targets, scenarios, schedules"),
    ] = None,
    tokens_file: Annotated[
        Path | None, typer.Option("--tokens-file", help="named tokens (else env HARNESS_TOKENS)")
    ] = None,
    open_reads_on_loopback: Annotated[
        bool | None,
        typer.Option("--open-reads-on-loopback", help="GET calls from loopback need no token"),
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option("--webhook-url", help="Slack-compatible run summaries")
    ] = None,
) -> None:
    """Run the game-day service: HTTP API, web UI, schedules, guards, emergency stop (every
    option is also HARNESS_SERVE_<OPTION> in the environment)."""
    import uvicorn

    from harness.service.app import create_app
    from harness.service.settings import ServiceSettings

    configure_logging()
    given = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "config_file": config,
        "tokens_file": tokens_file,
        "open_reads_on_loopback": open_reads_on_loopback,
        "webhook_url": webhook_url,
    }
    try:
        settings = ServiceSettings(**{k: v for k, v in given.items() if v is not None})
        application = create_app(settings)
    except FileProblems as exc:
        raise _fail(str(exc), 2) from None
    except ValueError as exc:  # pydantic's ValidationError is one
        raise _fail(str(exc), 2) from None
    if not application.state.service.auth.tokens:
        err.print("[yellow]no tokens configured: every mutating call will be refused[/]")
    console.print(
        f"serving on http://{settings.host}:{settings.port} (data in {settings.data_dir})"
    )
    uvicorn.run(application, host=settings.host, port=settings.port, log_level="warning")


@app.command("stop-all")
def stop_all(
    url: Annotated[
        str, typer.Option(help="the service [env HARNESS_URL]", envvar="HARNESS_URL")
    ] = "http://127.0.0.1:8090",
    token: Annotated[
        str | None,
        typer.Option(help="operator/admin token [env HARNESS_TOKEN]", envvar="HARNESS_TOKEN"),
    ] = None,
    direct: Annotated[
        bool, typer.Option("--direct", help="do not ask the service; heal the targets here")
    ] = False,
    target: Annotated[
        list[Path] | None, typer.Option("--target", help="direct mode: target file (repeatable)")
    ] = None,
    run_dir: RunDir = None,
) -> None:
    """Emergency stop: the service cancels every run and heals every target it knows. When
    no service answers at --url (or with --direct), heal directly: every slot of the local
    stack or each --target, after SIGTERM to a local run holding a target's lock."""
    import httpx

    from harness.service.emergency import heal_everywhere, stop_lock_holders

    configure_logging()
    result = None
    if not direct:
        try:
            answer = httpx.post(
                f"{url.rstrip('/')}/api/stop-all",
                headers={"Authorization": f"Bearer {token}"} if token else {},
                timeout=30,
            )
        except httpx.TransportError as exc:
            err.print(f"service not reachable at {url} ({exc}); healing directly")
        else:
            if answer.status_code != 200:
                raise _fail(f"the service refused: {answer.status_code} {answer.text}", 1)
            result = answer.json()
            console.print(f"service cancelled: {', '.join(result['cancelled']) or 'no run'}")
    if result is None:
        specs = [_require_target(t, run_dir) for t in target] if target else None
        specs = specs or _heal_targets(None, run_dir)
        for line in stop_lock_holders(specs):
            console.print(line)
        reports = anyio.run(heal_everywhere, specs)
        result = {"targets": reports, "clean": all(r["clean"] for r in reports)}
    for report in result["targets"]:
        state = "[green]clean[/]" if report["clean"] else "[red]NOT proven clean[/]"
        healed = ", ".join(h["key"] for h in report["healed"]) or "nothing to heal"
        why = f" — {'; '.join(report['errors'])}" if report["errors"] else ""
        console.print(f"{report['target']}: {state} ({healed}) in {report['seconds']}s{why}")
    raise typer.Exit(0 if result["clean"] else 1)


from harness.rejudge import command as _rejudge  # noqa: E402
from harness.report.cli import register as _register_report  # noqa: E402

_register_report(app)
app.command("rejudge")(_rejudge)
