"""The service's commands: `harness serve` (and `serve --check`), `harness stop-all`,
`harness lever engage|release|status` and `harness hash-token`. `register(app)` adds them to
the `harness` Typer app.

Exit codes: 0 done; 1 the service refused or a target is not proven clean; 2 bad input (a
setting, a config, tokens, schedules or target file: one line each naming the file, line and
field, or the flag or environment variable). Everything is printed through harness.output, so
text from files, flags and the service's answers is printed verbatim (no markup, no emoji
codes).
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.text import Text

from harness.logs import configure_logging
from harness.output import console, err, error, say
from harness.yamlfile import FileProblems

URL = Annotated[str, typer.Option(help="the service [env HARNESS_URL]", envvar="HARNESS_URL")]
TOKEN = Annotated[
    str | None,
    typer.Option(help="a token of the service [env HARNESS_TOKEN]", envvar="HARNESS_TOKEN"),
]
DEFAULT_URL = "http://127.0.0.1:8090"
FLAGS = {
    "host": "--host",
    "port": "--port",
    "data_dir": "--data-dir",
    "config_file": "--config",
    "tokens_file": "--tokens-file",
    "open_reads_on_loopback": "--open-reads-on-loopback",
    "webhook_url": "--webhook-url",
}


def _fail(message: str, code: int = 2) -> typer.Exit:
    error(message)
    return typer.Exit(code)


def _warn(message: str) -> None:
    say(message, "yellow", to=err)


def settings_problems(exc: ValidationError, given: dict[str, Any]) -> list[str]:
    """pydantic's errors about `harness serve` settings, one line each, naming the flag when
    it came from one and the environment variable otherwise (no pydantic URL)."""
    from harness.service.settings import ServiceSettings

    lines = []
    for problem in exc.errors(include_url=False):
        field = str(problem["loc"][0]) if problem["loc"] else ""
        if field in given:
            name = FLAGS.get(field, f"--{field.replace('_', '-')}")
        elif field in ServiceSettings.model_fields:
            alias = ServiceSettings.model_fields[field].validation_alias
            name = alias if isinstance(alias, str) else f"HARNESS_SERVE_{field.upper()}"
        else:
            name = field or "settings"
        value = problem.get("input")
        shown = f" (got {value!r})" if isinstance(value, str | int | float) else ""
        lines.append(f"{name}: {str(problem['msg']).removeprefix('Value error, ')}{shown}")
    return lines


def unknown_variables() -> list[str]:
    """HARNESS_SERVE_* variables that are no setting (pydantic-settings ignores them)."""
    from harness.service.settings import ServiceSettings

    known = {f"HARNESS_SERVE_{f.upper()}" for f in ServiceSettings.model_fields}
    known.add("HARNESS_SERVE_CONFIG")
    return sorted(n for n in os.environ if n.startswith("HARNESS_SERVE_") and n not in known)


def serve(
    host: Annotated[str | None, typer.Option(help="bind address [127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [8090]")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="store and runs [./.harness/service]")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="service YAML: run_dir, targets, scenarios, schedules, lever_guards "
            "[env HARNESS_SERVE_CONFIG_FILE or HARNESS_SERVE_CONFIG]",
        ),
    ] = None,
    tokens_file: Annotated[
        Path | None,
        typer.Option(
            "--tokens-file", help="named tokens [env HARNESS_SERVE_TOKENS_FILE; HARNESS_TOKENS]"
        ),
    ] = None,
    open_reads_on_loopback: Annotated[
        bool | None,
        typer.Option("--open-reads-on-loopback", help="GET calls from loopback need no token"),
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option("--webhook-url", help="Slack-compatible run summaries")
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="validate the settings, config, tokens, schedules and targets, then exit "
            "(0 valid, 2 not) without starting anything",
        ),
    ] = False,
) -> None:
    """Run the game-day service: HTTP API, web UI, schedules, guards, emergency stop, safety
    lever (every option is also HARNESS_SERVE_<OPTION> in the environment)."""
    from harness.service.datalock import DataDirInUse
    from harness.service.settings import ServiceSettings

    given = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "config_file": config,
        "tokens_file": tokens_file,
        "open_reads_on_loopback": open_reads_on_loopback,
        "webhook_url": webhook_url,
    }
    given = {k: v for k, v in given.items() if v is not None}
    for name in unknown_variables():
        _warn(f"warning: {name} is not a setting of harness serve; it is ignored "
              "(docs/deployment.md lists them)")  # fmt: skip
    try:
        settings = ServiceSettings(**given)
    except ValidationError as exc:
        for line in settings_problems(exc, given):
            error(line)
        raise typer.Exit(2) from None
    if check:
        _check(settings)
        return
    configure_logging()
    from harness.service import server
    from harness.service.app import create_app

    try:
        application = create_app(settings)
        application.state.service.lock.acquire()
    except FileProblems as exc:
        raise _fail(str(exc)) from None
    except DataDirInUse as exc:
        raise _fail(str(exc)) from None
    if not application.state.service.auth.tokens:
        _warn("no tokens configured: every call but /healthz will be refused")
    if application.state.service.lever.engaged:
        _warn(application.state.service.lever.refusal() or "")
    say(f"serving on http://{settings.host}:{settings.port} (data in {settings.data_dir})")
    server.serve(application, settings.host, settings.port)


def _check(settings: Any) -> None:
    """`serve --check`: every input loaded and cross-checked; nothing created or started."""
    from harness.service.service import Inputs

    try:
        inputs = Inputs(settings)
    except FileProblems as exc:
        raise _fail(str(exc)) from None
    data_dir = settings.data_dir
    if data_dir.exists() and not data_dir.is_dir():
        raise _fail(f"{data_dir} --data-dir: is a file; the data directory must be a directory")
    roles: dict[str, int] = {}
    for token in inputs.tokens:
        roles[token.role] = roles.get(token.role, 0) + 1
    say(
        f"ok: {len(inputs.tokens)} token(s) "
        f"({', '.join(f'{n} {r}' for r, n in sorted(roles.items())) or 'none'}), "
        f"{len(inputs.targets.files)} target file(s), {len(inputs.catalogue)} scenario(s), "
        f"{len(inputs.file_schedules)} schedule(s), "
        f"{len(inputs.config.lever_guards)} global guard(s)"
    )


def _post(url: str, path: str, token: str | None, body: Any = None) -> Any:
    import httpx

    return httpx.post(
        f"{url.rstrip('/')}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=30,
    )


def _print_stop(result: dict[str, Any]) -> None:
    for report in result["targets"]:
        state = ("clean", "green") if report["clean"] else ("NOT proven clean", "red")
        healed = ", ".join(h["key"] for h in report["healed"]) or "nothing to heal"
        why = f" — {'; '.join(report['errors'])}" if report["errors"] else ""
        line = Text.assemble(f"{report['target']}: ", state,
                             f" ({healed}) in {report['seconds']}s{why}")  # fmt: skip
        console.print(line, soft_wrap=True)


def stop_all(
    url: URL = DEFAULT_URL,
    token: TOKEN = None,
    direct: Annotated[
        bool, typer.Option("--direct", help="do not ask the service; heal the targets here")
    ] = False,
    target: Annotated[
        list[Path] | None, typer.Option("--target", help="direct mode: target file (repeatable)")
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="local stack directory [env HARNESS_RUN_DIR]"),
    ] = None,
) -> None:
    """Emergency stop: the service cancels every run and heals every target it knows. When
    no service answers at --url (or with --direct), heal directly: every slot of the local
    stack or each --target, after SIGTERM to a local run holding a target's lock."""
    import anyio
    import httpx

    from harness.config import load_target
    from harness.paths import run_dir as resolve_run_dir
    from harness.service.emergency import heal_everywhere, stop_lock_holders
    from harness.stack import slots as slot_stacks

    configure_logging()
    result = None
    if not direct:
        try:
            answer = _post(url, "/api/stop-all", token)
        except httpx.TransportError as exc:
            say(f"service not reachable at {url} ({exc}); healing directly", to=err)
        else:
            if answer.status_code != 200:
                raise _fail(f"the service refused: {answer.status_code} {answer.text}", 1)
            result = answer.json()
            say(f"service cancelled: {', '.join(result['cancelled']) or 'no run'}")
    if result is None:
        try:
            if target:
                specs = [load_target(t) for t in target]
            else:
                stacks = slot_stacks.existing(resolve_run_dir(run_dir))
                specs = [load_target(s.target_path) for s in stacks]
        except FileProblems as exc:
            raise _fail(str(exc)) from None
        if not specs:
            raise _fail("no local stack is up and no --target given: nothing to heal")
        for line in stop_lock_holders(specs):
            say(line)
        reports = anyio.run(heal_everywhere, specs)
        result = {"targets": reports, "clean": all(r["clean"] for r in reports)}
    _print_stop(result)
    raise typer.Exit(0 if result["clean"] else 1)


lever_app = typer.Typer(
    no_args_is_help=True,
    help="The safety lever: stop everything and refuse every run and scheduled fire until an "
    "admin releases it (it survives restarts).",
)


@lever_app.command("engage")
def lever_engage(
    reason: Annotated[str, typer.Option("--reason", help="why (audited, shown on every page)")],
    url: URL = DEFAULT_URL,
    token: TOKEN = None,
) -> None:
    """Engage the lever (an admin or safety token): the emergency stop, then nothing starts."""
    answer = _post(url, "/api/lever/engage", token, {"reason": reason})
    if answer.status_code != 200:
        raise _fail(f"the service refused: {answer.status_code} {answer.text}", 1)
    result = answer.json()
    say(
        f"safety lever engaged; cancelled: {', '.join(result['stop_all']['cancelled']) or 'no run'}"
    )
    _print_stop(result["stop_all"])
    raise typer.Exit(0 if result["stop_all"]["clean"] else 1)


@lever_app.command("release")
def lever_release(
    reason: Annotated[str, typer.Option("--reason", help="why it is safe again (audited)")],
    url: URL = DEFAULT_URL,
    token: TOKEN = None,
) -> None:
    """Release the lever (admin only): runs and schedules may start again."""
    answer = _post(url, "/api/lever/release", token, {"reason": reason})
    if answer.status_code != 200:
        raise _fail(f"the service refused: {answer.status_code} {answer.text}", 1)
    say("safety lever released")


@lever_app.command("status")
def lever_status(url: URL = DEFAULT_URL, token: TOKEN = None) -> None:
    """Whether the lever is engaged, by whom and why (exit 0 released, 1 engaged)."""
    import httpx

    answer = httpx.get(f"{url.rstrip('/')}/api/lever", timeout=30,
                       headers={"Authorization": f"Bearer {token}"} if token else {})  # fmt: skip
    if answer.status_code != 200:
        raise _fail(f"the service refused: {answer.status_code} {answer.text}", 2)
    state = answer.json()
    if state["engaged"]:
        say(f"ENGAGED by {state['by']}: {state['reason']}")
        raise typer.Exit(1)
    say("released")


def hash_token(
    kind: Annotated[str, typer.Option("--kind", help="scrypt or pbkdf2_sha256")] = "scrypt",
    generate: Annotated[
        bool, typer.Option("--generate", help="make a new random secret and print it too")
    ] = False,
) -> None:
    """Print the hash form of a token's secret (read from stdin, or --generate) for the
    tokens file's `secret_hash`; the service then never holds the secret."""
    import secrets

    from harness.service.credentials import hash_secret, weakness

    if kind not in ("scrypt", "pbkdf2_sha256"):
        raise _fail(f"--kind: {kind!r} is neither scrypt nor pbkdf2_sha256")
    if generate:
        secret = secrets.token_urlsafe(32)
        say(f"secret: {secret}")
    elif sys.stdin.isatty():
        secret = getpass.getpass("secret: ")
    else:
        secret = sys.stdin.readline().strip()
    why = weakness(secret)
    if why:
        raise _fail(f"secret {why}")
    say(hash_secret(secret, kind))


def register(app: typer.Typer) -> None:
    """Add the service's commands to the `harness` app."""
    app.command(short_help="the game-day service: HTTP API, web UI, schedules")(serve)
    app.command("stop-all", short_help="emergency stop: cancel every run, heal every target")(
        stop_all
    )
    app.command("hash-token", short_help="the hash form of a token's secret, for tokens files")(
        hash_token
    )
    app.add_typer(lever_app, name="lever", short_help="the safety lever: engage, release, status")
