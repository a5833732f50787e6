"""Every deployment starts the same `harness serve`: the image's CMD, docker-compose, systemd
(the Kubernetes Deployment: test_k8s_manifests.py), with the same environment contract."""

from __future__ import annotations

import shlex

import pytest
import yaml
from typer.main import get_command

from harness.cli import app

from ._support import ROOT, SERVICE_ENV, dockerfile_cmd, options, systemd_unit

IMAGE_CMD = ["harness", "serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]


def test_image_runs_the_service() -> None:
    assert dockerfile_cmd() == IMAGE_CMD
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001" in text and "EXPOSE 8080" in text


def test_compose_runs_what_the_image_runs() -> None:
    harness = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["harness"]
    command = [str(a) for a in harness["command"]]
    assert command[:2] == IMAGE_CMD[:2]
    assert options(command[2:]) == options(IMAGE_CMD[2:])
    declared = set(harness["environment"]) | {
        line.split(":")[0].strip("# ")
        for line in (ROOT / "docker-compose.yml").read_text().splitlines()
        if line.strip().startswith("# HARNESS_")
    }
    assert declared >= SERVICE_ENV, "compose names (or shows) every service setting"


def test_systemd_runs_serve_with_the_image_options() -> None:
    argv = shlex.split(systemd_unit()["Service"]["ExecStart"])
    assert argv[1] == "serve" and options(argv[2:]).keys() == options(IMAGE_CMD[2:]).keys()


def test_serve_accepts_the_options_once_it_exists() -> None:
    """`harness serve` comes from the service work (issue 12); once merged, its options must be
    the ones every deployment passes."""
    commands = get_command(app).commands  # type: ignore[attr-defined]
    if "serve" not in commands:
        pytest.skip("`harness serve` is not in this tree yet (issue 12, service branch)")
    names = {opt for param in commands["serve"].params for opt in param.opts}
    assert set(options(IMAGE_CMD[2:])) <= names
