"""Shared by the deployment tests: the image, the unit, and `harness serve` itself started on a
deployment's command line and environment, so a test checks what the real code makes of them."""

from __future__ import annotations

import configparser
import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import AliasChoices
from typer.testing import CliRunner

from harness import cli
from harness.paths import project_root
from harness.service import cli as service_cli
from harness.service import server
from harness.service.service import Service
from harness.service.settings import ServiceSettings

ROOT = project_root()
SYSTEMD_UNIT = ROOT / "deploy" / "systemd" / "harness.service"
SETTINGS_PREFIX = ServiceSettings.model_config["env_prefix"]
TOKENS_EXAMPLE = ROOT / "deploy" / "harness" / "tokens.example.yaml"
REAL_TOKENS = (
    "tokens:\n"
    "  - {name: gameday-operator, secret: Zq3-vT8pLm2xK9wR-operator, role: operator}\n"
    "  - {name: dashboard, secret: Zq3-vT8pLm2xK9wR-dashboard, role: read}\n"
)
"""A tokens file as an operator writes it (the example's placeholders are refused at start)."""


def setting_env(field: str) -> str:
    """The environment variable of a ServiceSettings field; a KeyError for a field that is not
    one, so a constant below cannot name an invented setting."""
    alias = ServiceSettings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):  # the documented name first among the accepted ones
        return next(str(c) for c in alias.choices if str(c).startswith(SETTINGS_PREFIX))
    return str(alias or f"{SETTINGS_PREFIX}{field.upper()}")


# The settings every deployment hands `harness serve`: its config file and its tokens file.
SERVICE_ENV = {setting_env("config_file"), setting_env("tokens_file")}


@functools.cache
def harness_env() -> frozenset[str]:
    """Every HARNESS_* variable the harness reads: the service's settings, and the names its
    source hands os.environ or typer (`"HARNESS_PROJECT_DIR"` …)."""
    source = "".join(path.read_text() for path in (ROOT / "harness").rglob("*.py"))
    names = set(re.findall(r'"(HARNESS_[A-Z_]*[A-Z])"', source))
    return frozenset(names | {setting_env(field) for field in ServiceSettings.model_fields})


def unknown_env(names: set[str]) -> set[str]:
    """The HARNESS_* names among `names` that nothing reads: pydantic-settings ignores them
    without a word, so an invented or misspelt one silently leaves the default in place."""
    return {n for n in names if n.startswith("HARNESS_") and n not in harness_env()}


def dockerfile(instruction: str) -> str:
    """The argument of the Dockerfile's one `instruction` line (CMD, EXPOSE, WORKDIR …)."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    (line,) = [line for line in lines if line.startswith(f"{instruction} ")]
    return line.removeprefix(f"{instruction} ").strip()


def dockerfile_cmd() -> list[str]:
    """The image's default command (the Dockerfile's exec-form CMD)."""
    return json.loads(dockerfile("CMD"))


def options(argv: list[str]) -> dict[str, str]:
    """Command-line options as a mapping, `--name value` and `--name=value` alike."""
    out, rest = {}, list(argv)
    while rest:
        name, equals, value = rest.pop(0).partition("=")
        out[name] = value if equals else rest.pop(0)
    return out


def systemd_unit() -> configparser.ConfigParser:
    """The unit file, parsed: systemd allows repeated keys, has no interpolation, and its keys
    are case-sensitive."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(SYSTEMD_UNIT.read_text())
    return parser


@dataclass(frozen=True)
class Served:
    """What `harness serve` built just before binding: the app, whose service holds the settings,
    config, targets, schedules and tokens as the real loaders read them, and the address."""

    app: FastAPI
    host: str
    port: int

    @property
    def service(self) -> Service:
        return self.app.state.service

    @property
    def routes(self) -> set[str]:
        return {path for route in self.app.routes if (path := getattr(route, "path", None))}

    def get(self, path: str) -> httpx.Response:
        """A GET without a token from a non-loopback client, as a probe or a scraper sends it
        (outside `with`: the lifespan, runs and scheduler, does not start)."""
        return TestClient(self.app).get(path)


def relocate(value: str, mounts: dict[str, Path]) -> str:
    """`value` (a path, or `--option=path`) with its mount's container path replaced by the
    local one it stands for in the test."""
    name, equals, path = value.partition("=") if value.startswith("-") else ("", "", value)
    for inside in sorted(mounts, key=len, reverse=True):
        if path == inside or path.startswith(inside.rstrip("/") + "/"):
            path = str(mounts[inside]) + path[len(inside) :]
            break
    return f"{name}{equals}{path}"


def serve(
    argv: list[str], env: dict[str, str], mounts: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Served:
    """Run the real `harness serve` CLI on a deployment's `argv` (`harness serve …`) with `env`
    as the only service settings in the environment, the paths of both moved by `mounts`
    (container path → local path); it stops where the server would bind."""
    assert Path(argv[0]).name == "harness" and argv[1] == "serve", argv
    for name in list(os.environ):
        if name.startswith(SETTINGS_PREFIX) or name == setting_env("tokens"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, relocate(value, mounts))
    bound: dict[str, object] = {}
    monkeypatch.setattr(
        server, "serve", lambda app, host, port: bound.update(app=app, host=host, port=port)
    )
    # structlog would keep writing to the runner's captured stderr after it is closed
    monkeypatch.setattr(service_cli, "configure_logging", lambda *_, **__: None)
    result = CliRunner().invoke(cli.app, [relocate(a, mounts) for a in argv[1:]])
    assert result.exit_code == 0 and bound, f"harness serve: {result.output}{result.exception}"
    return Served(bound["app"], bound["host"], bound["port"])  # type: ignore[arg-type]
