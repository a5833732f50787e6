"""`harness serve` and `harness stop-all` (to move to harness/service/cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
import typer

from harness.cli.common import RunDir, _fail, _heal_targets, _require_target, console, err
from harness.logs import configure_logging
from harness.yamlfile import FileProblems


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


def register(app: typer.Typer) -> None:
    """Add this group's commands to `harness`."""
    app.command(short_help="the game-day service: HTTP API, web UI, schedules")(serve)
    app.command("stop-all", short_help="emergency stop: cancel every run, heal every target")(
        stop_all
    )
