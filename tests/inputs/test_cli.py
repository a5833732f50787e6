"""First contact: help, version, exit codes, output in a pipe, and what `validate` and the dry
run say about the shipped catalogue (no live stack)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.paths import project_root
from harness.scenario import Scenario, UnknownScenarios, select_scenarios
from tests import inprocess
from tests.inputs.test_malformed import GOOD

ROOT = project_root()
COMMANDS = [
    "up",
    "status",
    "down",
    "toxiproxy-server",
    "list",
    "validate",
    "run",
    "heal",
    "serve",
    "stop-all",
    "report",
    "coverage",
]


def harness(*argv: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(argv))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_version_and_short_help() -> None:
    code, out = harness("--version")
    assert code == 0 and re.match(r"harness \S+", out), out
    code, out = harness("-h")
    assert code == 0 and "Exit codes" in out and "3  could not evaluate" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_type_labels(command: str) -> None:
    code, out = harness(command, "-h")
    assert code == 0, out
    assert not re.search(r"<(bool|str|int|path|list\[\w+\])>", out), out


def test_tables_are_whole_in_a_pipe() -> None:
    code, out = harness("list")
    assert code == 0, out
    # a long alert name on one line, never split at 80 columns
    assert any("RouterJetStreamHighRedeliveryRateCritical" in line for line in out.splitlines())
    assert max(len(line) for line in out.splitlines()) > 80


def test_validate_prints_each_rules_floor() -> None:
    code, out = harness("validate")
    assert code == 0, out
    assert "each rule's floor" in out
    assert re.search(r"RouterNatsHighAckFailureRate\s*│\s*10m30s\s*│\s*5m35s\s*│\s*4m55s", out)


def test_validate_takes_the_contract_and_a_target_positionally() -> None:
    contract = str(ROOT / "scenarios" / "alerting-contract.yaml")
    compose = str(ROOT / "deploy" / "targets" / "compose.yaml")
    code, out = harness("validate", contract, compose)
    assert code == 0, out
    assert "each rule's floor" in out  # read as the contract, not as a scenario
    # the 27 single-node scenarios and the 10 cluster ones (scenarios/cluster, CL-008's two
    # variants included), which need a cluster target: compose runs one nats-server
    assert "target compose (external): can run 26 of 38 scenario(s); cannot run 12:" in out
    assert "CHAOS-001: faults[0].kind: process faults need a local stack" in out
    assert "CL-001: topology: needs a cluster NATS target, this one is single" in out


def test_validate_target_lists_what_it_cannot_run_without_failing() -> None:
    code, out = harness("validate", "--target", str(ROOT / "deploy" / "targets" / "compose.yaml"))
    assert code == 0, out
    assert "12 cannot run there" in out


def test_shipped_catalogue_validates_and_aliases_are_unique() -> None:
    code, out = harness("validate")
    assert code == 0, out


def test_an_ambiguous_alias_is_refused() -> None:
    base = Scenario.model_validate(
        {
            "id": "S1",
            "title": "t",
            "faults": [{"kind": "proxy_down", "proxy": "p", "duration": "1m"}],
        }
    )
    one = base.model_copy(update={"aliases": ["shared"]})
    two = base.model_copy(update={"id": "S2", "aliases": ["shared"]})
    catalogue = {"S1": (one, Path("a.yaml")), "S2": (two, Path("b.yaml"))}
    with pytest.raises(UnknownScenarios, match="'shared' names S1 and S2: use the ID"):
        select_scenarios(catalogue, ["shared"])
    assert [s.id for s in select_scenarios(catalogue, ["S2"])] == ["S2"]


def test_dry_run_for_all_has_a_slot_plan_and_a_total() -> None:
    code, out = harness("run", "--all", "--dry-run", "--profile", "local", "--slots", "auto")
    assert code == 0, out
    assert re.search(r"slot plan: 38 scenario\(s\) on \d slot\(s\), \d single, \d cluster", out)
    assert re.search(r"slot \d \(cluster\): CL-\d{3}", out)
    assert re.search(r"slot 2 \(single\): \S+", out)
    assert "total: at most" in out
    assert "{'" not in out, "no raw Python dicts"


def test_dry_run_shows_both_clocks(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(GOOD)
    code, out = harness(
        "run", "TST-901", "--dry-run", "--profile", "local", "--scenarios", str(tmp_path)
    )
    assert code == 0, out
    assert "fault 0: toxic at +0s (0s here) for 15m (30s here)" in out
    assert "attributes.latency=1500" in out


def test_coverage_claimed_without_a_run_lists_the_claims() -> None:
    seed = ROOT / "docs" / "claimed-coverage-seed.md"
    code, out = harness("coverage", "--claimed", str(seed))
    assert code == 0, out
    assert "none checked: no run given" in out
    assert "`harness run S1`: a run with its alert checks passing" in out


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["up", "--profile", "nope"], 2, "--profile: unknown profile 'nope'"),
        (["heal", "--forget", "K"], 2, "--forget: needs --reason"),
        (["heal"], 3, "no target: start the local stack"),
        (["status"], 3, "no local stack in"),
    ],
    ids=["up-profile", "forget-without-reason", "heal-no-stack", "status-no-stack"],
)
def test_commands_that_log_exit_by_cause(
    argv: list[str], code: int, message: str, tmp_path: Path
) -> None:
    """These commands configure logging to stderr first (tests.inprocess undoes it after).
    Bad input (2) is told before the missing stack (3)."""
    done = inprocess.harness(*argv, "--run-dir", str(tmp_path / "none"))
    assert done.returncode == code, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_dry_run_notes_a_receiver_the_alertmanager_config_lacks(tmp_path: Path) -> None:
    text = (ROOT / "scenarios" / "alerting-contract.yaml").read_text()
    contract = tmp_path / "c.yaml"
    contract.write_text(text.replace("receiver: router-critical", "receiver: router-nowhere"))
    code, out = harness("run", "S1", "--dry-run", "--profile", "local", "--contract", str(contract))
    assert code == 0, out  # a finding about deploy/, not bad input: the plan still prints
    assert "note: " in out and "receiver 'router-nowhere' is not in" in out
    assert "notifies router-nowhere" in out  # the contract stays the expectation
