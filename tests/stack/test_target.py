"""Target files: good ones load and round-trip; bad ones name the file, line and field."""

from pathlib import Path

import pytest

from harness.config import PROFILES, Target, load_target, write_target
from harness.yamlfile import FileProblems

GOOD = """\
name: staging
kind: external
nats_url: nats://nats.staging.internal:4222
toxiproxy_url: http://toxiproxy.staging.internal:8474
prometheus_url: http://prometheus.staging.internal:9090
alertmanager_url: http://alertmanager.staging.internal:9093
router_metrics_urls:
  - http://router-0.staging.internal:9001/metrics
proxies:
  router_nats:
    listen: 0.0.0.0:14222
    upstream: nats:4222
profile:
  name: staging
  time_compression: 1
  scrape_interval: 15s
  evaluation_interval: 15s
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "target.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(FileProblems) as info:
        load_target(path)
    return [str(p) for p in info.value.problems]


def test_good_target_loads(tmp_path: Path) -> None:
    target = load_target(write(tmp_path, GOOD))
    assert target.proxies["router_nats"].upstream == "nats:4222"
    assert target.profile.scrape_interval == 15.0
    assert target.router_metrics_urls == ["http://router-0.staging.internal:9001/metrics"]


def test_round_trip(tmp_path: Path) -> None:
    target = Target(
        name="local",
        kind="local",
        nats_url="nats://127.0.0.1:4222",
        toxiproxy_url="http://127.0.0.1:8474",
        prometheus_url="http://127.0.0.1:9090",
        alertmanager_url="http://127.0.0.1:9093",
        profile=PROFILES["local"],
    )
    path = tmp_path / "t.yaml"
    write_target(target, path)
    assert load_target(path) == target


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t.replace("name: staging\n", "", 1),
            "target.yaml:1 name: required field is missing",
        ),
        (
            lambda t: t.replace("kind: external", "kind: external\nregion: eu"),
            "target.yaml:3 region: unknown key",
        ),
        (
            lambda t: t.replace("kind: external", "kind: remote"),
            "target.yaml:2 kind: Input should be 'local' or 'external'",
        ),
        (
            lambda t: t.replace("nats://nats", "http://nats"),
            "target.yaml:3 nats_url: must be a URL like nats://host:port",
        ),
        (lambda t: t.replace(":9090", ":99999"), "target.yaml:5 prometheus_url: bad port"),
        (
            lambda t: t.replace("  - http://router-0", "  - router-0"),
            "target.yaml:8 router_metrics_urls[0]: must be a URL",
        ),
        (
            lambda t: t.replace("time_compression: 1", "time_compression: 0.5"),
            "target.yaml:15 profile.time_compression: Input should be greater than or equal to 1",
        ),
        (
            lambda t: t.replace("scrape_interval: 15s", "scrape_interval: 15"),
            "target.yaml:16 profile.scrape_interval: must be a duration string with a unit",
        ),
        (
            lambda t: t.replace("evaluation_interval: 15s", "evaluation_interval: soon"),
            "target.yaml:17 profile.evaluation_interval: invalid duration 'soon'",
        ),
        (
            lambda t: t.replace("    listen: 0.0.0.0:14222", "    listen: [1, 2]"),
            "target.yaml:11 proxies.router_nats.listen: Input should be a valid string",
        ),
        (
            lambda t: t.replace(
                "    upstream: nats:4222", "    upstream: nats:4222\n    enabled: yes"
            ),
            "target.yaml:13 proxies.router_nats.enabled: unknown key",
        ),
        (
            lambda t: t + "name: again\n",
            "target.yaml:18 name: duplicate key (first defined on line 1)",
        ),
        (lambda t: t.replace("proxies:", "proxies: [", 1), "target.yaml:11: YAML syntax error"),
        (lambda t: "", "target.yaml:1: file is empty"),
        (lambda t: "- just\n- a list\n", "target.yaml:1: expected a mapping at the top level"),
    ],
)
def test_bad_target_names_file_line_field(tmp_path: Path, edit, expected: str) -> None:
    found = problems(write(tmp_path, edit(GOOD)))
    assert any(p.startswith(f"{tmp_path}/{expected}") for p in found), found


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("kind: external", "kind: remote").replace("nats://nats", "ftp://nats")
    found = problems(write(tmp_path, text))
    assert len(found) == 2
    assert ":2 kind:" in found[0] and ":3 nats_url:" in found[1]


def test_missing_file(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.yaml") == [f"{tmp_path}/nope.yaml: file not found"]
