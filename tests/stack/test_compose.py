"""docker-compose.yml: no Docker engine here, so check it parses and agrees with deploy/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from harness.config import load_target
from harness.paths import project_root
from tests.deploy._support import (
    REAL_TOKENS,
    Served,
    dockerfile,
    serve,
    setting_env,
    unknown_env,
)

ROOT = project_root()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def container_ports(service: str) -> set[int]:
    """Ports the service offers inside the compose network (published or only exposed)."""
    published = {int(str(p).split(":")[-1]) for p in SERVICES[service].get("ports", [])}
    return published | {int(p) for p in SERVICES[service].get("expose", [])}


def host_ports(service: str) -> set[int]:
    """Published host ports (`host:container` or `ip:host:container`)."""
    return {int(str(p).split(":")[-2]) for p in SERVICES[service].get("ports", [])}


def network_host(service: str) -> str:
    """The service whose network namespace `service` lives in (its own, by default)."""
    mode = SERVICES[service].get("network_mode", "")
    return mode.removeprefix("service:") if mode.startswith("service:") else service


def mounts(service: str) -> dict[str, Path]:
    """Container path → host path of each bind mount."""
    out = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            out[target] = ROOT / source
    return out


def flag(service: str, name: str) -> str:
    """The value of `--name=value` (or `-name=value`) in a service's command."""
    for arg in SERVICES[service]["command"]:
        match = re.fullmatch(rf"--?{re.escape(name)}=(.*)", str(arg))
        if match:
            return match.group(1)
    raise AssertionError(f"{service} has no {name} flag")


def test_services_and_images() -> None:
    assert set(SERVICES) == {
        "nats",
        "nats-exporter",
        "toxiproxy",
        "router",
        "harness",
        "webhook",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    # our Toxiproxy-compatible server: the protocol-aware toxics exist only there
    assert SERVICES["toxiproxy"]["command"][:2] == ["harness", "toxiproxy-server"]
    for built in ("router", "harness", "webhook", "toxiproxy", "nats-exporter"):
        assert SERVICES[built]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()


def test_every_mounted_file_exists() -> None:
    assert any(mounts(service) for service in SERVICES), "no service mounts a file"
    for service in SERVICES:
        for target, source in mounts(service).items():
            assert source.exists(), f"{service} mounts {source} at {target}, which does not exist"


def test_dockerfile_copies_what_exists() -> None:
    copies = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.startswith("COPY ")]
    assert copies, "the Dockerfile copies nothing"
    for line in copies:
        for source in line.split()[1:-1]:
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_depends_on_names_services() -> None:
    assert any(s.get("depends_on") for s in SERVICES.values()), "no service depends on another"
    for name, service in SERVICES.items():
        for dep in service.get("depends_on", []):
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"


def test_toxiproxy_proxies_agree_with_services() -> None:
    proxies = json.loads((ROOT / "deploy/toxiproxy/toxiproxy.json").read_text())
    assert flag("toxiproxy", "config") in mounts("toxiproxy")
    router_nats = next(p for p in proxies if p["name"] == "router_nats")
    host, port = router_nats["upstream"].split(":")
    assert host in SERVICES and int(port) in container_ports(host)
    listen_port = int(router_nats["listen"].rsplit(":", 1)[1])
    assert listen_port in container_ports("toxiproxy")
    # The router reaches NATS only through the proxy.
    nats_url = urlsplit(flag("router", "nats-url"))
    assert (nats_url.hostname, nats_url.port) == ("toxiproxy", listen_port)


def test_prometheus_scrapes_services_on_their_ports() -> None:
    config_mount = flag("prometheus", "config.file")
    config = yaml.safe_load(mounts("prometheus")[config_mount].read_text())
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for address in static["targets"]:
                host, port = address.split(":")
                assert host in SERVICES, f"job {job['job_name']} scrapes unknown host {host}"
                assert int(port) in container_ports(network_host(host)), f"{address}: not exposed"
    assert int(flag("router", "metrics-port")) in container_ports("router")
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
    assert am.split(":")[0] == "alertmanager" and int(am.split(":")[1]) in container_ports(
        "alertmanager"
    )
    rules_glob = config["rule_files"][0]
    rules_dir = str(Path(rules_glob).parent)
    assert mounts("prometheus")[rules_dir] == ROOT / "deploy/prometheus/rules"


def test_alertmanager_notifies_the_harness_webhook() -> None:
    """The receiver shares the harness service's network: `harness:9095` reaches it."""
    config = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    assert flag("alertmanager", "config.file") in mounts("alertmanager")
    urls = [h["url"] for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert urls, "no webhook receiver in deploy/alertmanager/alertmanager.yml"
    assert network_host("webhook") == "harness"
    assert "ports" not in SERVICES["webhook"], "a shared network namespace publishes nothing"
    for url in urls:
        parts = urlsplit(url)
        assert parts.hostname == "harness" and parts.port == int(flag("webhook", "port"))
        assert parts.path.startswith("/alertmanager/")
    assert int(flag("webhook", "port")) in container_ports("harness")
    assert int(flag("webhook", "port")) != int(flag("harness", "port"))


def secret_file(name: str, tmp_path: Path) -> Path:
    """The host file of a compose secret: `${VAR:-default}` read as its default; a required
    `${VAR:?message}` (the tokens: no default) as a file the operator wrote."""
    spec = COMPOSE["secrets"][name]["file"]
    if re.fullmatch(r"\$\{\w+:\?.*\}", spec):
        (tmp_path / name).write_text(REAL_TOKENS)
        return tmp_path / name
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", spec)
    return ROOT / (match.group(1) if match else spec)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Served:
    """`harness serve` as the `harness` service starts it: the image's copy of the project,
    its secrets under /run/secrets, its named volumes (empty directories)."""
    harness = SERVICES["harness"]
    files = {dockerfile("WORKDIR"): ROOT}
    files |= {f"/run/secrets/{name}": secret_file(name, tmp_path) for name in harness["secrets"]}
    for volume in harness["volumes"]:
        name, inside = volume.split(":")[:2]
        files[inside] = tmp_path / name
    env = {name: str(value) for name, value in harness["environment"].items()}
    return serve([str(a) for a in harness["command"]], env, files, monkeypatch)


def test_harness_service_runs_serve_against_the_in_network_target(
    served: Served, tmp_path: Path
) -> None:
    harness = SERVICES["harness"]
    assert served.host == "0.0.0.0" and served.port in container_ports("harness")
    assert f"127.0.0.1:{served.port}:{served.port}" in harness["ports"], "loopback only"
    assert served.service.settings.data_dir == tmp_path / "harness-data"
    assert set(harness["depends_on"]) >= {"nats", "toxiproxy", "router", "prometheus"}
    # tokens from a secret the operator names (no default), never in the compose file
    assert [t.name for t in served.service.auth.tokens] == ["gameday-operator", "dashboard"]
    assert setting_env("tokens") not in harness["environment"]
    assert not unknown_env(set(harness["environment"]))
    files = served.service.targets.files
    assert len(files) == 1, f"the service knows {len(files)} target files, not the compose one"
    target = files[0][1]
    host_view = load_target(ROOT / "deploy/targets/compose.yaml")
    assert target.name == host_view.name and target.proxies == host_view.proxies
    assert target.profile == host_view.profile
    for url in [
        target.nats_url,
        target.toxiproxy_url,
        target.prometheus_url,
        target.alertmanager_url,
        target.webhook_url,
        *target.router_metrics_urls,
    ]:
        parts = urlsplit(url)
        assert parts.hostname in SERVICES, f"{url}: no such compose service"
        assert parts.port in container_ports(network_host(parts.hostname)), url


def test_harness_healthcheck_asks_the_health_route(served: Served) -> None:
    """The healthcheck sends no token: its URL must be a route that answers 200 without."""
    (url,) = re.findall(r"https?://[^'\"\s]+", " ".join(SERVICES["harness"]["healthcheck"]["test"]))
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.port == served.port
    assert parts.path in served.routes, f"{parts.path} is no route of the app"
    assert served.get(parts.path).status_code == 200


def test_prometheus_loads_the_harness_alerts_and_scrapes_the_service(served: Served) -> None:
    config_mount = flag("prometheus", "config.file")
    config = yaml.safe_load(mounts("prometheus")[config_mount].read_text())
    mounted = mounts("prometheus")
    assert any(mounted.get(f) == ROOT / "deploy/harness/alerts.yml" for f in config["rule_files"])
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "harness")
    assert job["static_configs"][0]["targets"] == [f"harness:{served.port}"]
    path = job.get("metrics_path", "/metrics")
    assert path in served.routes
    # compose's choice: /metrics open (HARNESS_SERVE_OPEN_METRICS), the job sends no token
    assert "authorization" not in job and served.service.settings.open_metrics
    assert served.get(path).status_code == 200


def test_grafana_provisioning_agrees() -> None:
    grafana = mounts("grafana")
    datasources = yaml.safe_load(
        (grafana["/etc/grafana/provisioning/datasources"] / "prometheus.yml").read_text()
    )
    url = urlsplit(datasources["datasources"][0]["url"])
    assert url.hostname == "prometheus" and url.port in container_ports("prometheus")
    providers = yaml.safe_load(
        (grafana["/etc/grafana/provisioning/dashboards"] / "dashboards.yml").read_text()
    )
    path = providers["providers"][0]["options"]["path"]
    assert grafana[path] == ROOT / "deploy/grafana/dashboards"
    dashboards = list((ROOT / "deploy/grafana/dashboards").glob("*.json"))
    assert dashboards, "no dashboard JSON to provision"
    uid = datasources["datasources"][0]["uid"]
    for dashboard in dashboards:
        text = dashboard.read_text()
        builtin = {json.loads(text)["uid"], "-- Grafana --", "grafana"}  # annotations' source
        for used in set(re.findall(r'"uid":\s*"([^"$]+)"', text)) - builtin:
            assert used == uid, f"{dashboard.name} uses datasource uid {used}, provisioned {uid}"


def test_compose_target_file_matches_published_ports() -> None:
    target = load_target(ROOT / "deploy/targets/compose.yaml")
    for url, service in [
        (target.nats_url, "nats"),
        (target.toxiproxy_url, "toxiproxy"),
        (target.prometheus_url, "prometheus"),
        (target.alertmanager_url, "alertmanager"),
        (target.webhook_url, "webhook"),
        *[(u, "router") for u in target.router_metrics_urls],
    ]:
        published = host_ports(network_host(service))
        assert urlsplit(url).port in published, f"{url} is not published by {service}"
    proxies = {
        p["name"]: p for p in json.loads((ROOT / "deploy/toxiproxy/toxiproxy.json").read_text())
    }
    assert target.proxies, "the compose target names no proxy"
    for name, spec in target.proxies.items():
        assert name in proxies
        assert spec.upstream == proxies[name]["upstream"]


@pytest.mark.parametrize("service", ["router", "webhook", "nats-exporter"])
def test_built_commands_accept_their_flags(service: str) -> None:
    command = SERVICES[service]["command"]
    assert command[:2] == ["python", "-m"]
    result = subprocess.run(
        [sys.executable, "-m", command[2], "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for arg in command[3:]:
        name = str(arg).split("=")[0]
        assert name in result.stdout, f"{service}: `python -m {command[2]}` has no {name} option"
