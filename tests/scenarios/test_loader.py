"""The scenario loader against a corpus of bad files: each names its exact file, line and field.

`bad/EXPECTED.tsv` holds, per file, the line, the field path and the start of the message.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.scenario import load_scenario, load_scenarios
from harness.yamlfile import FileProblems

BAD = Path(__file__).parent / "bad"


def expectations() -> list[tuple[str, str]]:
    rows = []
    for line in (BAD / "EXPECTED.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, expected = line.split("\t")
            rows.append((name, expected))
    return rows


def test_corpus_is_complete() -> None:
    listed = {name for name, _ in expectations()}
    on_disk = {p.name for p in BAD.glob("*.yaml")}
    assert listed == on_disk
    assert len(listed) >= 25


@pytest.mark.parametrize(("name", "expected"), expectations())
def test_bad_file_names_file_line_field(name: str, expected: str) -> None:
    path = BAD / name
    number, rest = expected.split(" ", 1)
    field, message = rest.split(": ", 1)
    where = f"{path}:{number}"
    prefix = f"{where} {field}: {message}" if field else f"{where}: {message}"
    with pytest.raises(FileProblems) as info:
        load_scenario(path)
    found = [str(p) for p in info.value.problems]
    assert any(p.startswith(prefix) for p in found), f"expected {prefix!r} in {found}"


def test_every_problem_in_a_file_reported_at_once(tmp_path: Path) -> None:
    text = (BAD / "toxic-negative-latency.yaml").read_text().replace("rate: 50", "rate: fast")
    path = tmp_path / "two.yaml"
    path.write_text(text)
    with pytest.raises(FileProblems) as info:
        load_scenario(path)
    fields = [p.field for p in info.value.problems]
    assert fields == ["faults[0].attributes", "workload.rate"]


def good_text() -> str:
    return (
        (BAD / "toxic-negative-latency.yaml").read_text().replace("latency: -1500", "latency: 1500")
    )


def test_good_scenario_loads(tmp_path: Path) -> None:
    path = tmp_path / "s1.yaml"
    path.write_text(good_text())
    scenario = load_scenario(path)
    fault = scenario.faults[0]
    assert (fault.kind, fault.start, fault.duration) == ("toxic", 5.0, 30.0)
    assert scenario.fault_window == 35.0  # production seconds; a profile compresses them
    assert scenario.proxies() == {"router_nats"}
    assert not scenario.exclusive


def test_duplicate_id_names_both_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(good_text())
    (tmp_path / "b.yaml").write_text(good_text())
    with pytest.raises(FileProblems) as info:
        load_scenarios(tmp_path)
    (problem,) = info.value.problems
    assert (
        str(problem) == f"{tmp_path}/b.yaml:1 id: scenario S1 is also defined in {tmp_path}/a.yaml"
    )


def test_problems_of_all_files_reported_together(tmp_path: Path) -> None:
    shutil.copy(BAD / "empty.yaml", tmp_path / "empty.yaml")
    shutil.copy(BAD / "bad-id.yaml", tmp_path / "bad-id.yaml")
    with pytest.raises(FileProblems) as info:
        load_scenarios(tmp_path)
    assert {Path(p.file).name for p in info.value.problems} == {"empty.yaml", "bad-id.yaml"}
