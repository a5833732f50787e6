"""deploy/k8s: rendered offline, every object valid against the bundled Kubernetes schemas, and
the cross-references (volumes, selectors, ports, config files) holding."""

from __future__ import annotations

import functools
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from harness.config import Target
from harness.paths import project_root
from harness.service.auth import MUTATING_ROLES, load_tokens
from harness.service.schedules import Schedule
from harness.specs.faults import EXTENSION_TOXICS, ToxicFault
from harness.yamlfile import FileProblems

from ._support import (
    REAL_TOKENS,
    SERVICE_ENV,
    SETTINGS_PREFIX,
    TOKENS_EXAMPLE,
    Served,
    dockerfile_cmd,
    serve,
    setting_env,
    unknown_env,
)
from .kustomize import KustomizeError, Object, containers, pod_templates, render

ROOT = project_root()
K8S = ROOT / "deploy" / "k8s"
BASE, STAGING = K8S / "base", K8S / "overlays" / "staging"
KUSTOMIZATIONS = {"base": BASE, "staging": STAGING}
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests promise to work on
REAL_TOXIPROXY = "ghcr.io/shopify/toxiproxy"
OUT_OF_BAND_SECRETS = {"harness-tokens"}
"""Secrets the pod mounts that the manifests must not contain: made out of band."""


@functools.cache
def _rendered(directory: Path) -> tuple[str, ...]:
    return tuple(json.dumps(o) for o in render(directory))


def rendered(directory: Path) -> list[Object]:
    """A fresh copy each time (tests may not alter each other's view)."""
    return [json.loads(o) for o in _rendered(directory)]


def of_kind(objects: list[Object], kind: str) -> dict[str, Object]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def unhashed(name: str) -> str:
    """A generated ConfigMap's name without its content-hash suffix."""
    return re.sub(r"-[0-9a-f]{10}$", "", name)


def one(objects: list[Object], kind: str, name: str) -> Object:
    """The object of `kind` named `name` (or `name-<hash>`, if generated)."""
    found = [o for n, o in of_kind(objects, kind).items() if unhashed(n) == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} objects"
    return found[0]


def workload_of(objects: list[Object], selector: dict[str, str]) -> Object:
    """The one workload whose pod template carries every label of `selector`."""
    matches = [
        template
        for o in objects
        for template in pod_templates(o)
        if selector.items() <= template["metadata"].get("labels", {}).items()
    ]
    assert len(matches) == 1, f"selector {selector} matches {len(matches)} pod templates"
    return matches[0]


def port_names(template: Object) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for c in containers(template) for p in c.get("ports", [])}


def container(template: Object, name: str) -> Object:
    return next(c for c in containers(template) if c["name"] == name)


def harness_container(objects: list[Object]) -> Object:
    return container(next(pod_templates(one(objects, "Deployment", "harness"))), "harness")


def pod_files(objects: list[Object], tmp_path: Path) -> dict[str, Path]:
    """The harness container's mounts (mount path → local directory): ConfigMaps and Secrets
    written out key by key, claims and emptyDirs empty."""
    template = next(pod_templates(one(objects, "Deployment", "harness")))
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    config_maps, secrets = of_kind(objects, "ConfigMap"), of_kind(objects, "Secret")
    files = {}
    for mount in harness_container(objects)["volumeMounts"]:
        volume = volumes[mount["name"]]
        local = files[mount["mountPath"]] = tmp_path / "pod" / mount["name"]
        local.mkdir(parents=True)
        if "configMap" in volume:
            data = config_maps[volume["configMap"]["name"]]["data"]
        elif "secret" in volume:
            name = volume["secret"]["secretName"]
            assert name in OUT_OF_BAND_SECRETS and name not in secrets, name
            data = {"tokens.yaml": REAL_TOKENS}
        else:
            data = {}
        for key, text in data.items():
            (local / key).write_text(text)
    return files


def serve_pod(
    objects: list[Object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Served, dict[str, Path]]:
    """`harness serve` as the harness container starts it: its command, env and mounts."""
    harness = harness_container(objects)
    env = {e["name"]: e["value"] for e in harness.get("env", [])}
    files = pod_files(objects, tmp_path)
    return serve([*harness["command"], *harness.get("args", [])], env, files, monkeypatch), files


def service_host(url: str) -> tuple[str, int]:
    """(Service name, port) of an in-cluster URL: `toxiproxy` or `toxiproxy.ns.svc…`."""
    parts = urlsplit(url)
    return parts.hostname.split(".")[0], parts.port


KUSTOMIZATION_IDS = list(KUSTOMIZATIONS)


@pytest.fixture(params=KUSTOMIZATION_IDS)
def objects(request: pytest.FixtureRequest) -> list[Object]:
    return rendered(KUSTOMIZATIONS[request.param])


@pytest.fixture
def pod(objects: list[Object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Served:
    return serve_pod(objects, tmp_path, monkeypatch)[0]


# -- rendering and schemas ------------------------------------------------------------------


def test_base_renders_the_service_and_toxiproxy() -> None:
    kinds = sorted((o["kind"], unhashed(o["metadata"]["name"])) for o in rendered(BASE))
    assert kinds == [
        ("ConfigMap", "harness-config"),
        ("ConfigMap", "toxiproxy-config"),
        ("Deployment", "harness"),
        ("Deployment", "toxiproxy"),
        ("NetworkPolicy", "toxiproxy"),
        ("PersistentVolumeClaim", "harness-data"),
        ("Service", "harness"),
        ("Service", "toxiproxy"),
    ]
    names = [o["metadata"]["name"] for o in rendered(BASE) if o["kind"] == "ConfigMap"]
    assert all(unhashed(n) != n for n in names), "generated ConfigMaps carry a content hash"


def test_every_object_is_valid_against_the_kubernetes_schema(objects: list[Object]) -> None:
    problems = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            problems.append(f"{obj['kind']}/{obj['metadata']['name']} {where}: {exc.message}")
    assert not problems, "\n".join(problems)


def test_schema_validation_catches_a_mistake() -> None:
    """The validator is strict: a misspelt field in a container fails."""
    deployment = one(rendered(BASE), "Deployment", "harness")
    deployment["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError, match="volumeMount"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


# -- cross-references -----------------------------------------------------------------------


def test_pod_volumes_refer_to_objects_that_exist(objects: list[Object]) -> None:
    claims, secrets = of_kind(objects, "PersistentVolumeClaim"), of_kind(objects, "Secret")
    config_maps = of_kind(objects, "ConfigMap")
    assert any(True for obj in objects for _ in pod_templates(obj)), "no pod template rendered"
    for obj in objects:
        for template in pod_templates(obj):
            volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
            for volume in volumes.values():
                if "persistentVolumeClaim" in volume:
                    assert volume["persistentVolumeClaim"]["claimName"] in claims, volume
                if "secret" in volume:
                    name = volume["secret"]["secretName"]
                    assert name in OUT_OF_BAND_SECRETS and name not in secrets, volume
                if "configMap" in volume:
                    assert volume["configMap"]["name"] in config_maps, volume
            mounted = {m["name"] for c in containers(template) for m in c.get("volumeMounts", [])}
            assert mounted <= set(volumes), f"{obj['metadata']['name']}: mounts undeclared volumes"
            assert set(volumes) <= mounted, f"{obj['metadata']['name']}: unmounted volumes"


def test_services_select_one_workload_and_its_ports(objects: list[Object]) -> None:
    services = of_kind(objects, "Service")
    assert services, "no Service rendered"
    for name, service in services.items():
        template = workload_of(objects, service["spec"]["selector"])
        named = port_names(template)
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in named or target in named.values(), f"{name}: {target} not a pod port"


def test_probes_use_declared_ports(objects: list[Object]) -> None:
    assert any(True for obj in objects for _ in pod_templates(obj)), "no pod template rendered"
    for obj in objects:
        for template in pod_templates(obj):
            named = port_names(template)
            for c in containers(template):
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    if probe in c:
                        port = c[probe]["httpGet"]["port"]
                        assert port in named or port in named.values(), (c["name"], probe)
                assert "readinessProbe" in c and "livenessProbe" in c, c["name"]


def test_harness_probes_and_scrape_reach_the_served_app(objects: list[Object], pod: Served) -> None:
    """Probes and the annotation scrape send no token: their paths must be routes of the app
    that answer without one, on the port the service binds."""
    template = next(pod_templates(one(objects, "Deployment", "harness")))
    harness = container(template, "harness")
    named = port_names(template)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = harness[probe]["httpGet"]
        assert named.get(get["port"], get["port"]) == pod.port, probe
        assert get["path"] in pod.routes, f"{probe}: {get['path']} is no route of the app"
        assert pod.get(get["path"]).status_code == 200, probe
    annotations = template["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == pod.port
    assert annotations["prometheus.io/path"] in pod.routes
    assert pod.service.settings.open_metrics, "annotation scrapes carry no bearer token"
    assert pod.get(annotations["prometheus.io/path"]).status_code == 200


def test_harness_env_names_real_settings(objects: list[Object]) -> None:
    harness = harness_container(objects)
    names = {e["name"] for e in harness["env"]}
    assert names >= SERVICE_ENV and not unknown_env(names)


def test_toxiproxy_api_only_reachable_from_the_harness(objects: list[Object]) -> None:
    policy = one(objects, "NetworkPolicy", "toxiproxy")
    toxiproxy = workload_of(objects, policy["spec"]["podSelector"]["matchLabels"])
    assert container(toxiproxy, "toxiproxy")["image"].startswith(REAL_TOXIPROXY + ":")
    api, proxy = policy["spec"]["ingress"]
    harness = workload_of(objects, api["from"][0]["podSelector"]["matchLabels"])
    assert "harness" in {c["name"] for c in containers(harness)}
    assert [p["port"] for p in api["ports"]] == ["api"] and port_names(toxiproxy)["api"] == 8474
    assert "from" not in proxy and [p["port"] for p in proxy["ports"]] == ["router-nats"]
    assert set(port_names(toxiproxy)) == {"api", "router-nats"}


def test_harness_runs_serve_like_the_image(
    objects: list[Object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = next(pod_templates(one(objects, "Deployment", "harness")))
    harness = container(template, "harness")
    assert harness["command"] == dockerfile_cmd()
    pod, files = serve_pod(objects, tmp_path, monkeypatch)
    assert pod.host == "0.0.0.0" and port_names(template)["http"] == pod.port
    data = next(
        m for m in harness["volumeMounts"] if files[m["mountPath"]] == pod.service.settings.data_dir
    )
    volume = next(v for v in template["spec"]["volumes"] if v["name"] == data["name"])
    assert volume["persistentVolumeClaim"]["claimName"] == "harness-data"
    webhook = container(template, "webhook")
    assert shlex.join(webhook["command"][:3]) == "python -m harness.stack.webhook_receiver"
    assert f"--port={port_names(template)['webhook']}" in webhook["command"]


def test_single_writer_for_the_store(objects: list[Object]) -> None:
    deployment = one(objects, "Deployment", "harness")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    claim = one(objects, "PersistentVolumeClaim", "harness-data")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_containers_run_unprivileged(objects: list[Object]) -> None:
    assert any(True for obj in objects for _ in pod_templates(obj)), "no pod template rendered"
    for obj in objects:
        for template in pod_templates(obj):
            assert template["spec"]["securityContext"]["runAsNonRoot"] is True
            assert template["spec"]["automountServiceAccountToken"] is False
            for c in containers(template):
                context = c["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, c["name"]
                assert context["readOnlyRootFilesystem"] is True, c["name"]
                assert "memory" in c["resources"]["limits"], c["name"]


# -- the configuration the pod reads --------------------------------------------------------


def staged(pod: Served) -> tuple[Target, list[Schedule]]:
    """The target and the schedules the served pod loaded through its ConfigMap's service.yaml."""
    files = pod.service.targets.files
    assert len(files) == 1, f"the pod knows {len(files)} target files, not its ConfigMap's one"
    return files[0][1], pod.service.file_schedules


def test_configmap_target_and_schedules_load(pod: Served) -> None:
    target, schedules = staged(pod)
    catalogue = pod.service.catalogue
    for schedule in schedules:
        assert schedule.target in (None, target.name), f"{schedule.name}: unknown target"
        if schedule.scenarios != "all":
            unknown = set(schedule.scenarios) - set(catalogue)
            assert not unknown, f"{schedule.name}: no such scenarios {sorted(unknown)}"


def test_scheduled_scenarios_need_no_toxic_the_real_toxiproxy_lacks(
    objects: list[Object], pod: Served
) -> None:
    toxiproxy = next(pod_templates(one(objects, "Deployment", "toxiproxy")))
    if not container(toxiproxy, "toxiproxy")["image"].startswith(REAL_TOXIPROXY):
        return  # the harness's Toxiproxy-compatible server has the protocol-aware toxics
    _, schedules = staged(pod)
    catalogue = pod.service.catalogue
    for schedule in schedules:
        ids = catalogue if schedule.scenarios == "all" else schedule.scenarios
        for sid in ids:
            scenario, _ = catalogue[sid]
            types = {f.type for f in scenario.faults if isinstance(f, ToxicFault)}
            assert not types & EXTENSION_TOXICS, f"{schedule.name}: {sid} needs {types}"


def test_target_addresses_the_manifests_services(objects: list[Object], pod: Served) -> None:
    target, _ = staged(pod)
    services = of_kind(objects, "Service")
    namespace = one(objects, "Deployment", "harness")["metadata"].get("namespace")
    for url, service, port_name in [
        (target.toxiproxy_url, "toxiproxy", "api"),
        (target.webhook_url, "harness", "webhook"),
    ]:
        host, port = service_host(url)
        assert host == service, url
        ports = {p["name"]: p["port"] for p in services[service]["spec"]["ports"]}
        assert port == ports[port_name], url
        if namespace and "." in urlsplit(url).hostname:
            assert urlsplit(url).hostname.split(".")[1] == namespace, url
    proxies = json.loads(one(objects, "ConfigMap", "toxiproxy-config")["data"]["toxiproxy.json"])
    toxiproxy = next(pod_templates(one(objects, "Deployment", "toxiproxy")))
    assert {p["name"] for p in proxies} == set(target.proxies)
    for proxy in proxies:
        spec = target.proxies[proxy["name"]]
        assert (spec.listen, spec.upstream) == (proxy["listen"], proxy["upstream"])
        assert int(proxy["listen"].rsplit(":", 1)[1]) in port_names(toxiproxy).values()
    args = container(toxiproxy, "toxiproxy")["args"]
    assert "-port=8474" in args and "-config=/config/toxiproxy.json" in args


def test_no_secret_is_deployed_and_the_pod_reads_the_out_of_band_one(
    objects: list[Object], pod: Served
) -> None:
    """`kubectl apply -k` never ships a token (nor overwrites a real Secret made out of band);
    the pod's tokens are the out-of-band Secret's."""
    assert of_kind(objects, "Secret") == {}
    tokens = pod.service.auth.tokens
    assert [(t.name, t.role) for t in tokens] == [("gameday-operator", "operator"),
                                                  ("dashboard", "read")]  # fmt: skip
    assert {t.role in MUTATING_ROLES for t in tokens} == {True, False}, "one mutates, one reads"


def test_the_example_tokens_are_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileProblems, match="placeholder"):
        load_tokens(TOKENS_EXAMPLE)


def test_an_invented_setting_leaves_the_pod_without_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic-settings ignores a variable that is no setting: a manifest naming the config
    file without the HARNESS_SERVE_ prefix starts a service that knows no target, and the
    tests above fail."""
    objects = rendered(BASE)
    harness = harness_container(objects)
    env = next(e for e in harness["env"] if e["name"] == setting_env("config_file"))
    env["name"] = "HARNESS_" + env["name"].removeprefix(SETTINGS_PREFIX)  # HARNESS_CONFIG_FILE
    assert unknown_env({env["name"]}) == {env["name"]}
    with pytest.raises(AssertionError, match="knows 0 target files"):
        staged(serve_pod(objects, tmp_path, monkeypatch)[0])


# -- the staging overlay --------------------------------------------------------------------


def test_staging_is_namespaced_labelled_and_pinned() -> None:
    objects = rendered(STAGING)
    assert of_kind(objects, "Namespace").keys() == {"chaos-staging"}
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["environment"] == "staging"
        if obj["kind"] != "Namespace":  # the base's objects
            assert labels["app.kubernetes.io/part-of"] == "jetstream-chaos-harness"
            assert obj["metadata"]["namespace"] == "chaos-staging", obj["metadata"]["name"]
        for template in pod_templates(obj):
            assert template["metadata"]["labels"]["environment"] == "staging"
            for c in containers(template):
                name, _, tag = c["image"].rpartition(":")
                assert name and tag and tag != "latest", c["image"]
                assert "/" in name, f"{c['image']}: the base's placeholder image is left"


def test_staging_overrides_reach_the_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = rendered(STAGING)
    template = next(pod_templates(one(objects, "Deployment", "harness")))
    assert container(template, "harness")["resources"]["limits"]["memory"] == "2Gi"
    assert container(template, "webhook")["resources"]["limits"]["memory"] == "256Mi"
    assert len(container(template, "harness")["volumeMounts"]) == 4  # merged, not replaced
    claim = one(objects, "PersistentVolumeClaim", "harness-data")
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    target, schedules = staged(serve_pod(objects, tmp_path, monkeypatch)[0])
    assert target.name == "staging" and target.profile.time_compression == 1
    assert [s.name for s in schedules] == ["weekly-gameday"]
    # a changed ConfigMap gets a new name, so the pod rolls and reads it
    base_name = one(rendered(BASE), "ConfigMap", "harness-config")["metadata"]["name"]
    assert one(objects, "ConfigMap", "harness-config")["metadata"]["name"] != base_name


# -- the renderer itself --------------------------------------------------------------------


def write_kustomization(directory: Path, body: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(body))
    return directory


def test_renderer_refuses_what_it_does_not_do(tmp_path: Path) -> None:
    with pytest.raises(KustomizeError, match="helmCharts"):
        render(write_kustomization(tmp_path / "a", {"helmCharts": [{"name": "x"}]}))
    with pytest.raises(KustomizeError, match="does not exist"):
        render(write_kustomization(tmp_path / "b", {"resources": ["missing.yaml"]}))
    with pytest.raises(KustomizeError, match="only `patches: - path:`"):
        render(write_kustomization(tmp_path / "c", {"patches": [{"patch": "{}"}]}))


def test_renderer_suffixes_by_content_and_rewrites_references(tmp_path: Path) -> None:
    deployment = one(rendered(BASE), "Deployment", "toxiproxy")
    deployment["metadata"].pop("labels")
    directory = tmp_path / "k"
    directory.mkdir()
    (directory / "d.yaml").write_text(yaml.safe_dump(deployment))
    (directory / "c.json").write_text("[]")
    body = {
        "resources": ["d.yaml"],
        "configMapGenerator": [{"name": "toxiproxy-config", "files": ["toxiproxy.json=c.json"]}],
    }
    deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = "toxiproxy-config"
    (directory / "d.yaml").write_text(yaml.safe_dump(deployment))
    first = render(write_kustomization(directory, body))
    (directory / "c.json").write_text('[{"name": "x"}]')
    second = render(directory)
    names = [one(r, "ConfigMap", "toxiproxy-config")["metadata"]["name"] for r in (first, second)]
    assert names[0] != names[1]
    for objects, name in zip((first, second), names, strict=True):
        volume = one(objects, "Deployment", "toxiproxy")["spec"]["template"]["spec"]["volumes"][0]
        assert volume["configMap"]["name"] == name
