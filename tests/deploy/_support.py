"""Shared by the deployment tests: the image's command, the service's settings, the unit."""

from __future__ import annotations

import configparser
import json

from harness.paths import project_root

ROOT = project_root()
SYSTEMD_UNIT = ROOT / "deploy" / "systemd" / "harness.service"
# The settings every deployment hands `harness serve` (paths of the files it reads at start).
SERVICE_ENV = {"HARNESS_TARGET", "HARNESS_SCHEDULES", "HARNESS_TOKENS_FILE"}


def dockerfile_cmd() -> list[str]:
    """The image's default command (the Dockerfile's exec-form CMD)."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    (cmd,) = [line for line in lines if line.startswith("CMD ")]
    return json.loads(cmd.removeprefix("CMD "))


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
