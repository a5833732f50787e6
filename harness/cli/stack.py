"""`harness up`, `status`, `down` and `toxiproxy-server`: the local stack."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.table import Table

from harness.cli.common import (
    BAD_INPUT,
    CANNOT_EVALUATE,
    FAILED,
    RunDir,
    _fail,
    _load_target,
    _slot_count,
    bad_flag,
    console,
)
from harness.config import PROFILES
from harness.logs import configure_logging
from harness.output import cell, say
from harness.paths import run_dir as resolve_run_dir
from harness.plan import AUTO_CLUSTER_SLOTS, auto_cluster_slots
from harness.stack import slots as slot_stacks
from harness.stack.process import tail
from harness.stack.stack import ComponentStatus, LocalStack, StackError, StackOptions
from harness.target_check import check_target


def _show(statuses: list[ComponentStatus], title: str) -> None:
    table = Table(title=cell(title), title_justify="left")
    for column in ("component", "state", "pid", "url"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    for s in statuses:
        colour = "green" if s.state == "up" else "red"
        table.add_row(
            cell(s.name), cell(s.state, colour), cell(s.pid or ""), cell(s.url), cell(s.detail)
        )
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
    cluster_slots: Annotated[
        str | None,
        typer.Option(
            help="3-node cluster slots to add beside the --slots ones, for the cluster "
            "scenarios: a number, or `auto` [with --slots auto and --nats-cluster 1: "
            f"{AUTO_CLUSTER_SLOTS}; else 0]"
        ),
    ] = None,
    run_dir: RunDir = None,
) -> None:
    """Start the local stack (every slot); stay in the foreground until Ctrl-C unless
    --detach."""
    if nats_cluster not in (1, 3):
        bad_flag("--nats-cluster", f"must be 1 or 3, got {nats_cluster}")
    count = _slot_count(slots)
    extra = _cluster_slots(cluster_slots, slots, nats_cluster, count)
    configure_logging()
    if profile not in PROFILES:
        raise _fail(
            f"--profile: unknown profile {profile!r}; choose one of {', '.join(PROFILES)}",
            BAD_INPUT,
        )
    directory = resolve_run_dir(run_dir)
    running = [s for s in slot_stacks.existing(directory) if anyio.run(_alive, s)]
    if running:
        raise _fail(
            f"a stack is already running in {running[0].run_dir} "
            f"({len(running)} slot(s)): run `harness down` first",
            CANNOT_EVALUATE,
        )
    options = StackOptions(
        router_fault_hook=router_fault_hook,
        router_readyz=router_readyz,
        nats_cluster=nats_cluster,
    )
    mix = [(count, options)]
    if extra:
        mix.append((count + extra, replace(options, nats_cluster=3)))
    # SIGTERM tears down like Ctrl-C does, also half-way through start-up.
    signal.signal(signal.SIGTERM, lambda *_: _raise_interrupt())
    try:
        started = anyio.run(partial(slot_stacks.up_mix, directory, mix, profile=PROFILES[profile]))
    except StackError as exc:
        raise _fail(str(exc), CANNOT_EVALUATE) from None
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


def _cluster_slots(text: str | None, slots: str, nats_cluster: int, count: int) -> int:
    """Cluster slots to add beside the `--slots` ones (`--cluster-slots`, or what `auto`
    means: some beside automatic single-node slots, none beside a count the user chose)."""
    if text is None:
        text = "auto"
    if text == "auto":
        return auto_cluster_slots(count) if slots == "auto" and nats_cluster == 1 else 0
    if not text.isdigit() or count + int(text) > slot_stacks.MAX_SLOTS:
        bad_flag(
            "--cluster-slots",
            f"must be auto or 0..{slot_stacks.MAX_SLOTS - count} beside {count} slot(s), "
            f"got {text!r}",
        )
    return int(text)


async def _alive(stack: LocalStack) -> bool:
    state = stack.read_state()
    return bool(state and any(r.alive() for r in stack.records(state)))


def _show_started(stacks: list[LocalStack]) -> None:
    for stack in stacks:
        target = stack.target()
        _show(anyio.run(stack.status), f"{slot_stacks.name(stack)}: local stack in {stack.run_dir}")
        say(f"target file: {stack.target_path}")
        say(f"Prometheus:   {target.prometheus_url}")
        say(f"Alertmanager: {target.alertmanager_url}")


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
                f"stopped\n--- last lines of {record.log} ---\n{tail(record.log)}",
                CANNOT_EVALUATE,
            )


def _raise_interrupt() -> None:
    raise KeyboardInterrupt


def status(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    target: Annotated[
        Path | None, typer.Option("--target", help="check an external stack's target file")
    ] = None,
    run_dir: RunDir = None,
) -> None:
    """Report each component (or each endpoint of --target) as up or down, and why."""
    if target is not None:
        spec = _load_target(target)
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
            raise typer.Exit(FAILED)
        return
    directory = resolve_run_dir(run_dir)
    stacks = slot_stacks.existing(directory)
    if not stacks:
        raise _fail(
            f"no local stack in {directory.resolve()} (no stack.json): run `harness up`",
            CANNOT_EVALUATE,
        )
    all_up, documents = True, []
    for stack in stacks:
        try:
            statuses = anyio.run(stack.status)
        except StackError as exc:
            raise _fail(str(exc), CANNOT_EVALUATE) from None
        title = f"local stack in {stack.run_dir}"
        all_up = all_up and all(s.state == "up" for s in statuses)
        if as_json:
            documents.append(json.loads(_as_json(title, "local", statuses)))
        else:
            _show(statuses, f"{slot_stacks.name(stack)}: {title}" if len(stacks) > 1 else title)
    if as_json:
        print(json.dumps(documents[0] if len(documents) == 1 else documents, indent=2))
    if not all_up:
        raise typer.Exit(FAILED)


def down(run_dir: RunDir = None) -> None:
    """Stop everything `harness up` started in the run directory, every slot."""
    configure_logging()
    directory = resolve_run_dir(run_dir)
    stacks = slot_stacks.existing(directory)
    if not stacks:
        say(f"no local stack in {directory.resolve()}; nothing to stop")
        return
    try:
        stopped = slot_stacks.down(stacks)
    except StackError as exc:
        raise _fail(str(exc), CANNOT_EVALUATE) from None
    if len(stacks) == 1:
        stopped = [line.split(": ", 1)[1] for line in stopped]
    say(f"stopped: {'; '.join(stopped) if stopped else 'nothing was running'}")


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


def register(app: typer.Typer) -> None:
    """Add this group's commands to `harness`."""
    app.command(short_help="start the local stack, every slot")(up)
    app.command(short_help="each component (or --target endpoint) up or down, and why")(status)
    app.command(short_help="stop the local stack, every slot")(down)
    app.command("toxiproxy-server", short_help="the embedded Toxiproxy-compatible server")(
        toxiproxy_server
    )
