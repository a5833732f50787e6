"""deploy/systemd: the unit parses, starts `harness serve` on its state directory, and the env
file example with the example config installed beside it makes a service that loads them."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from harness.service.schedules import load_schedules

from ._support import (
    REAL_TOKENS,
    ROOT,
    SERVICE_ENV,
    SYSTEMD_UNIT,
    Served,
    options,
    serve,
    unknown_env,
)
from ._support import systemd_unit as unit

UNIT = SYSTEMD_UNIT
ENV_EXAMPLE = UNIT.parent / "harness.env.example"
ETC = "/etc/jetstream-chaos-harness"
# What the unit's install notes put in ETC beside harness.env (a target file of the format of
# deploy/targets/compose.yaml).
INSTALLED = {
    "service.yaml": UNIT.parent / "service.example.yaml",
    "target.yaml": ROOT / "deploy/targets/compose.yaml",
    "schedules.yaml": ROOT / "deploy/harness/schedules.example.yaml",
}


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Served:
    """`harness serve` as the unit starts it, on the example env file and installed files."""
    service = unit()["Service"]
    etc = tmp_path / "etc"
    etc.mkdir()
    for name, source in INSTALLED.items():
        shutil.copy(source, etc / name)
    (etc / "tokens.yaml").write_text(REAL_TOKENS)  # the install notes: write your own
    # the operator's target, named as the example schedules name it (serve refuses a schedule
    # naming an unknown target)
    target = INSTALLED["target.yaml"].read_text().replace("name: compose", "name: staging", 1)
    (etc / "target.yaml").write_text(target)
    mounts = {
        ETC: etc,
        f"/var/lib/{service['StateDirectory']}": tmp_path / "state",
        "/opt/jetstream-chaos-harness": ROOT,
    }
    return serve(shlex.split(service["ExecStart"]), env_example(), mounts, monkeypatch)


def test_unit_parses_into_its_sections() -> None:
    parsed = unit()
    assert set(parsed.sections()) == {"Unit", "Service", "Install"}
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    assert parsed["Service"]["User"] == "harness"


def test_execstart_runs_harness_serve_on_the_state_directory(
    served: Served, tmp_path: Path
) -> None:
    service = unit()["Service"]
    argv = shlex.split(service["ExecStart"])
    given = options(argv[2:])
    assert given["--data-dir"] == f"/var/lib/{service['StateDirectory']}"
    assert service["WorkingDirectory"] == given["--data-dir"]
    assert served.service.settings.data_dir == tmp_path / "state"


def test_stop_gives_the_service_time_to_heal() -> None:
    service = unit()["Service"]
    assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) >= 30
    assert service["Restart"] == "on-failure"


def test_env_file_names_real_settings() -> None:
    service = unit()["Service"]
    assert "${" not in service["ExecStart"], "settings come from the env file, not the command"
    defined = set(env_example())
    commented = {
        line.lstrip("# ").partition("=")[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.lstrip("# ").startswith("HARNESS_") and "=" in line
    }
    assert defined >= SERVICE_ENV and not unknown_env(defined | commented)
    assert service["EnvironmentFile"].endswith("/harness.env")
    # the install notes copy the example to the path the unit reads
    assert service["EnvironmentFile"] in UNIT.read_text().split("harness.env.example", 1)[1]


def test_the_installed_files_are_what_the_service_loads(served: Served) -> None:
    assert served.host == "127.0.0.1", "loopback unless the operator says otherwise"
    files = served.service.targets.files
    assert [t.name for _, t in files] == ["staging"], "service.yaml names the installed target"
    expected = [s.name for s in load_schedules(INSTALLED["schedules.yaml"])]
    assert [s.name for s in served.service.file_schedules] == expected
    assert [t.name for t in served.service.auth.tokens] == ["gameday-operator", "dashboard"]
    assert not served.service.settings.open_metrics, "the example scrapes with a read token"
