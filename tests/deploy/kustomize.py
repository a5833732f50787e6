"""A small offline kustomize: the part of `kubectl kustomize` that deploy/k8s uses, so the tests
can render the manifests without the kubectl binary.

Supported: `resources` (files and directories), `namespace`, `labels` (pairs, includeSelectors,
includeTemplates), `images` (name, newName, newTag), `configMapGenerator` (files, literals;
behavior create, replace, merge) with a content-hash name suffix and the pod templates'
references rewritten to it, and `patches` given by `path` (strategic merge: maps merged, lists
of named items merged by name or mountPath). Anything else in a kustomization is an error, so
a manifest that starts to rely on a feature this renderer ignores cannot pass unnoticed. The
hash suffix is not byte-identical to kustomize's; only its consistency matters here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]

KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "configMapGenerator",
    "patches",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
MERGE_KEYS = ("mountPath", "containerPort", "name")  # the API's patch merge keys


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not do, or refers to nothing."""


@dataclass
class _Build:
    objects: list[Object] = field(default_factory=list)
    generated: set[str] = field(default_factory=set)  # ConfigMap names to suffix

    def find(self, kind: str, name: str) -> Object | None:
        return next(
            (o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name), None
        )


def render(directory: Path) -> list[Object]:
    """Every object the kustomization in `directory` produces, as `kubectl kustomize` would."""
    build = _build(directory)
    _suffix_generated(build)
    return build.objects


def pod_templates(obj: Object) -> Iterator[Object]:
    """The pod template of a workload (none for other kinds)."""
    if obj["kind"] in WORKLOADS:
        yield obj["spec"]["template"]
    elif obj["kind"] == "CronJob":
        yield obj["spec"]["jobTemplate"]["spec"]["template"]


def containers(template: Object) -> list[Object]:
    spec = template["spec"]
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def _build(directory: Path) -> _Build:
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    doc = yaml.safe_load(path.read_text()) or {}
    unknown = set(doc) - KUSTOMIZATION_KEYS
    if unknown:
        raise KustomizeError(f"{path}: unsupported keys {sorted(unknown)}")
    build = _Build()
    for resource in doc.get("resources", []):
        source = (directory / resource).resolve()
        if source.is_dir():
            sub = _build(source)
            build.objects += sub.objects
            build.generated |= sub.generated
        elif source.is_file():
            build.objects += [o for o in yaml.safe_load_all(source.read_text()) if o]
        else:
            raise KustomizeError(f"{path}: resource {resource} does not exist")
    for generator in doc.get("configMapGenerator", []):
        _generate(build, directory, generator, path)
    for patch in doc.get("patches", []):
        _patch(build, directory, patch, path)
    for labels in doc.get("labels", []):
        _label(build, labels, path)
    for image in doc.get("images", []):
        _set_image(build, image, path)
    if "namespace" in doc:
        for obj in build.objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = doc["namespace"]
    return build


def _generate(build: _Build, directory: Path, generator: Object, path: Path) -> None:
    unknown = set(generator) - {"name", "behavior", "files", "literals"}
    if unknown:
        raise KustomizeError(f"{path}: configMapGenerator keys {sorted(unknown)} unsupported")
    data: dict[str, str] = {}
    for entry in generator.get("files", []):
        key, _, source = entry.rpartition("=")
        file = directory / source
        if not file.is_file():
            raise KustomizeError(f"{path}: configMapGenerator file {source} does not exist")
        data[key or Path(source).name] = file.read_text()
    for literal in generator.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    name, behavior = generator["name"], generator.get("behavior", "create")
    existing = build.find("ConfigMap", name)
    if behavior == "create":
        if existing is not None:
            raise KustomizeError(f"{path}: ConfigMap {name} already exists (use behavior)")
        build.objects.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        )
        build.generated.add(name)
    elif behavior in ("replace", "merge"):
        if existing is None or name not in build.generated:
            raise KustomizeError(f"{path}: no generated ConfigMap {name} to {behavior}")
        existing["data"] = data if behavior == "replace" else {**existing["data"], **data}
    else:
        raise KustomizeError(f"{path}: unknown behavior {behavior!r}")


def _patch(build: _Build, directory: Path, patch: Object, path: Path) -> None:
    if set(patch) != {"path"}:
        raise KustomizeError(f"{path}: only `patches: - path:` is supported, got {patch}")
    doc = yaml.safe_load((directory / patch["path"]).read_text())
    target = build.find(doc["kind"], doc["metadata"]["name"])
    if target is None:
        raise KustomizeError(f"{path}: patch {patch['path']} matches no object")
    merged = _merge(target, doc)
    target.clear()
    target.update(merged)


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge: maps merge key by key, lists of keyed maps merge item by item."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    if isinstance(base, list) and isinstance(patch, list):
        key = next((k for k in MERGE_KEYS if _keyed(patch, k) and _keyed(base, k)), None)
        if key is None:
            return patch
        out = list(base)
        for item in patch:
            index = next((n for n, b in enumerate(out) if b[key] == item[key]), None)
            if index is None:
                out.append(item)
            else:
                out[index] = _merge(out[index], item)
        return out
    return patch


def _keyed(items: list[Any], key: str) -> bool:
    return all(isinstance(item, dict) and key in item for item in items)


def _label(build: _Build, spec: Object, path: Path) -> None:
    unknown = set(spec) - {"pairs", "includeSelectors", "includeTemplates"}
    if unknown:
        raise KustomizeError(f"{path}: labels keys {sorted(unknown)} unsupported")
    pairs = spec["pairs"]
    selectors = spec.get("includeSelectors", False)
    templates = selectors or spec.get("includeTemplates", False)
    for obj in build.objects:
        obj["metadata"].setdefault("labels", {}).update(pairs)
        for template in pod_templates(obj) if templates else ():
            template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if selectors and obj["kind"] in WORKLOADS:
            obj["spec"]["selector"]["matchLabels"].update(pairs)
        elif selectors and obj["kind"] == "Service":
            obj["spec"].setdefault("selector", {}).update(pairs)


def _set_image(build: _Build, spec: Object, path: Path) -> None:
    unknown = set(spec) - {"name", "newName", "newTag"}
    if unknown:
        raise KustomizeError(f"{path}: images keys {sorted(unknown)} unsupported")
    for obj in build.objects:
        for template in pod_templates(obj):
            for container in containers(template):
                name, _, tag = container["image"].partition(":")
                if name == spec["name"]:
                    tag = spec.get("newTag", tag)
                    container["image"] = spec.get("newName", name) + (f":{tag}" if tag else "")


def _suffix_generated(build: _Build) -> None:
    renamed = {}
    for name in build.generated:
        obj = build.find("ConfigMap", name)
        digest = hashlib.sha256(json.dumps(obj["data"], sort_keys=True).encode()).hexdigest()
        obj["metadata"]["name"] = renamed[name] = f"{name}-{digest[:10]}"
    for obj in build.objects:
        for template in pod_templates(obj):
            spec = template["spec"]
            for volume in spec.get("volumes", []):
                if "configMap" in volume:
                    ref = volume["configMap"]
                    ref["name"] = renamed.get(ref["name"], ref["name"])
            for container in containers(template):
                for source in container.get("envFrom", []):
                    if "configMapRef" in source:
                        ref = source["configMapRef"]
                        ref["name"] = renamed.get(ref["name"], ref["name"])
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("configMapKeyRef")
                    if ref:
                        ref["name"] = renamed.get(ref["name"], ref["name"])
