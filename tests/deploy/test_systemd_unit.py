"""deploy/systemd: the unit parses, starts `harness serve` on its state directory, and every
variable it uses comes from the env file example."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from ._support import SERVICE_ENV, SYSTEMD_UNIT, options
from ._support import systemd_unit as unit

UNIT = SYSTEMD_UNIT
ENV_EXAMPLE = UNIT.parent / "harness.env.example"


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def test_unit_parses_into_its_sections() -> None:
    parsed = unit()
    assert set(parsed.sections()) == {"Unit", "Service", "Install"}
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    assert parsed["Service"]["User"] == "harness"


def test_execstart_runs_harness_serve_on_the_state_directory() -> None:
    service = unit()["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "harness" and argv[1] == "serve"
    given = options(argv[2:])
    assert set(given) == {"--host", "--port", "--data-dir"}
    assert given["--data-dir"] == f"/var/lib/{service['StateDirectory']}"
    assert service["WorkingDirectory"] == given["--data-dir"]


def test_stop_gives_the_service_time_to_heal() -> None:
    service = unit()["Service"]
    assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) >= 30
    assert service["Restart"] == "on-failure"


def test_variables_come_from_the_env_file() -> None:
    service = unit()["Service"]
    used = set(re.findall(r"\$\{(\w+)\}", service["ExecStart"]))
    defined = env_example()
    assert used and used <= set(defined), f"undefined in {ENV_EXAMPLE.name}: {used - set(defined)}"
    assert set(defined) >= SERVICE_ENV
    assert defined["HARNESS_HOST"] == "127.0.0.1", "loopback unless the operator says otherwise"
    assert service["EnvironmentFile"].endswith("/harness.env")
    # the install notes copy the example to the path the unit reads
    assert service["EnvironmentFile"] in UNIT.read_text().split("harness.env.example", 1)[1]
