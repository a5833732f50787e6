"""Every deployment starts the same `harness serve`: the image's CMD, docker-compose, systemd
(the Kubernetes Deployment: test_k8s_manifests.py), with the same settings."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from ._support import (
    ROOT,
    SERVICE_ENV,
    dockerfile,
    dockerfile_cmd,
    options,
    serve,
    systemd_unit,
)


def test_image_runs_the_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = serve(dockerfile_cmd(), {}, {"/data": tmp_path}, monkeypatch)
    assert served.host == "0.0.0.0" and str(served.port) in dockerfile("EXPOSE").split()
    assert served.service.settings.data_dir == tmp_path
    assert dockerfile("USER").startswith("10001")


def test_compose_runs_what_the_image_runs() -> None:
    harness = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["harness"]
    command = [str(a) for a in harness["command"]]
    image = dockerfile_cmd()
    assert command[:2] == image[:2]
    assert options(command[2:]) == options(image[2:])
    assert set(harness["environment"]) >= SERVICE_ENV, "compose sets every service setting"


def test_systemd_runs_serve_with_the_image_options() -> None:
    argv = shlex.split(systemd_unit()["Service"]["ExecStart"])
    image = dockerfile_cmd()
    assert argv[1] == "serve" and options(argv[2:]).keys() <= options(image[2:]).keys()


def test_compose_publishes_every_port_on_loopback_only() -> None:
    """The Toxiproxy API, Prometheus (lifecycle API on), Alertmanager and the webhook control
    faults and alerts without a token: nobody else on the network may reach them."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    published = {name: s.get("ports", []) for name, s in services.items()}
    assert {"toxiproxy", "prometheus", "alertmanager", "harness"} <= set(published)
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} on every interface"


def test_compose_has_no_fallback_to_the_example_tokens() -> None:
    secret = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["secrets"]["harness-tokens"]
    assert "example" not in secret["file"] and ":?" in secret["file"], secret
