"""Scenario files: the model of one fault scenario and the loader for `scenarios/`.

A scenario is declarative YAML (faults with offsets, the workload, what must be observed). Its
faults and checks are the spec models kept beside their drivers and checks (`harness.faults`,
`harness.checks.*`), so adding a kind touches one module. Every duration is production time
(`harness.plan` puts it on a target's clock). A file may declare *variants* of its scenario,
such as the just-above / just-below runs of a contract threshold; each becomes a scenario of its
own (`S1@above`). The loader reports every problem of a file at once with its file, line and
field path, and refuses an ID used twice.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from harness.checks.registry import expectations_model
from harness.config import Strict
from harness.contract import CONTRACT_FILE
from harness.durations import Duration
from harness.errors import HarnessError
from harness.specs.faults import Fault
from harness.syncinterval import NatsSettings
from harness.workload.spec import WorkloadMix, WorkloadSpec
from harness.yamlfile import (
    FileProblems,
    Problem,
    load_model,
    load_yaml,
    locate,
    problems_from_validation,
    read_text,
)

__all__ = [
    "Boundary",
    "Expectations",
    "Scenario",
    "UnknownScenarios",
    "Variant",
    "WorkloadMix",
    "WorkloadSpec",
    "load_scenario",
    "id_order",
    "load_scenarios",
    "select_scenarios",
]

BASE_ID = r"S[1-9]\d*|JS-\d{3}|NATS-\d{3}|PERF-\d{3}|[A-Z][A-Z0-9]*-\d{3}"
VARIANT_NAME = r"[a-z][a-z0-9-]*"
SCENARIO_ID = rf"^({BASE_ID})(@{VARIANT_NAME})?$"


Expectations = expectations_model()
"""A scenario's `expect:`: each check kind declares its own key (`Check.expects`), so a new
check kind is one module."""


class PhaseTimeouts(Strict):
    """Deadlines per phase, in production time; `baseline` is also the baseline window."""

    preflight: Duration = Field(15 * 60.0, gt=0)
    baseline: Duration = Field(5 * 60.0, gt=0)
    inject: Duration = Field(7 * 60.0 + 30, gt=0)
    heal: Duration = Field(7 * 60.0 + 30, gt=0)
    recover: Duration = Field(30 * 60.0, gt=0)


class Boundary(Strict):
    """This run sits on one side of an alert's contract threshold: just above it must fire
    within the objective, just below it must stay silent. The contract's threshold signal,
    evaluated over the fault window, proves the level was where the variant claims."""

    alert: str
    side: Literal["above", "below"]


class Variant(Strict):
    """A variant of the file's scenario: the same scenario with some fields overridden.

    `faults` overrides fault fields by index (e.g. `{0: {toxicity: 0.03}}`), or drops the
    fault with `null` (e.g. `{2: null}`: one stepdown fewer); `expect` is merged into the
    scenario's expectations (mappings merge, lists are replaced).
    """

    name: Annotated[str, Field(pattern=rf"^{VARIANT_NAME}$")]
    title: str | None = None
    description: str = ""
    boundary: Boundary | None = None
    faults: dict[int, dict[str, Any] | None] = Field(default_factory=dict)
    workload: dict[str, Any] = Field(default_factory=dict)
    expect: dict[str, Any] = Field(default_factory=dict)


class Scenario(Strict):
    """One fault scenario, as written in `scenarios/<id>.yaml` (or one of its variants)."""

    id: Annotated[str, Field(pattern=SCENARIO_ID)]
    aliases: list[str] = Field(default_factory=list)
    title: str = Field(min_length=1)
    description: str = ""
    related: list[str] = Field(default_factory=list)
    topology: Literal["single", "cluster"] = Field(
        "single",
        description="the NATS the scenario needs: one server, or a JetStream cluster (a target "
        "whose topology kind is cluster); a run places it on a slot of that kind only",
    )
    nats: NatsSettings | None = Field(
        None,
        description="settings the NATS servers must run with for this scenario (e.g. "
        "`sync_interval: always`); unset: whatever the target runs",
    )
    faults: list[Fault] = Field(min_length=1)
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    expect: Expectations = Field(default_factory=Expectations)
    timeouts: PhaseTimeouts = Field(default_factory=PhaseTimeouts)
    variants: list[Variant] = Field(default_factory=list)
    boundary: Boundary | None = Field(None, description="set on a boundary variant")

    @model_validator(mode="after")
    def _variants(self) -> Scenario:
        names = [v.name for v in self.variants]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"variant name(s) used twice: {', '.join(twice)}")
        for variant in self.variants:
            bad = sorted(i for i in variant.faults if not 0 <= i < len(self.faults))
            if bad:
                raise ValueError(f"variant {variant.name} overrides faults {bad} that do not exist")
        return self

    @property
    def base_id(self) -> str:
        return self.id.split("@", 1)[0]

    @property
    def exclusive(self) -> bool:
        """Needs a shared component to itself (a process fault takes NATS or the router away)."""
        return any(f.kind == "process" for f in self.faults)

    @property
    def fault_window(self) -> float:
        """Production seconds from the first injection until the last fault ends."""
        return max(f.start + f.duration for f in self.faults)

    def proxies(self) -> set[str]:
        return {f.proxy for f in self.faults if hasattr(f, "proxy")}

    def alerts_named(self) -> set[str]:
        return set(self.expect.alerts.fire) | set(self.expect.alerts.forbid)


def merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def variant_document(data: dict[str, Any], variant: Variant) -> dict[str, Any]:
    """The scenario document of one variant: the file's document with the overrides applied."""
    doc = copy.deepcopy(data)
    doc.pop("variants", None)
    doc["id"] = f"{data['id']}@{variant.name}"
    doc["title"] = variant.title or f"{data.get('title', '')} ({variant.name})"
    if variant.description:
        doc["description"] = variant.description
    faults = doc.get("faults") or []
    for index, fields in variant.faults.items():
        faults[index] = None if fields is None else merge(faults[index], fields)
    doc["faults"] = [f for f in faults if f is not None]
    if variant.workload:
        doc["workload"] = merge(doc.get("workload") or {}, variant.workload)
    expect = merge(doc.get("expect") or {}, variant.expect)
    if variant.boundary is not None:
        boundary = variant.boundary
        doc["boundary"] = boundary.model_dump()
        alerts = dict(expect.get("alerts") or {})
        fire = [a for a in alerts.get("fire") or [] if a != boundary.alert]
        forbid = [a for a in alerts.get("forbid") or [] if a != boundary.alert]
        (fire if boundary.side == "above" else forbid).append(boundary.alert)
        alerts["fire"], alerts["forbid"] = fire, forbid
        if boundary.side == "below":
            overrides = dict(alerts.get("contract") or {})
            overrides.pop(boundary.alert, None)
            alerts["contract"] = overrides
        expect["alerts"] = alerts
    doc["expect"] = expect
    return doc


def _load_file(path: Path) -> list[Scenario]:
    """The file's scenario and its variants; every problem positioned in the file."""
    scenario = load_model(Scenario, path)
    if not scenario.variants:
        return [scenario]
    data, root = load_yaml(path)
    found, problems = [scenario], []
    for index, variant in enumerate(scenario.variants):
        try:
            found.append(Scenario.model_validate(variant_document(data, variant)))
        except ValidationError as exc:
            line = locate(root, ["variants", index])
            for p in problems_from_validation(exc, root, str(path)):
                problems.append(
                    Problem(
                        str(path),
                        line,
                        f"variants[{index}] ({variant.name})",
                        f"{p.field}: {p.message}",
                    )
                )
    if problems:
        raise FileProblems(problems)
    return found


def load_scenario(path: Path | str) -> Scenario:
    """One scenario file (its base scenario); every problem with its line and field."""
    return _load_file(Path(path))[0]


TOPOLOGY_DIRS = ("cluster",)
"""Subdirectories of a catalogue that belong to it: `cluster/` holds the scenarios that need a
3-node JetStream cluster (`topology: cluster`); a run places them on cluster slots."""


def scenario_files(directory: Path | str) -> list[Path]:
    """The scenario files of a catalogue directory and of its `cluster/` subdirectory (the
    alerting contract lives beside them); a missing directory is a FileProblems, not an empty
    catalogue."""
    directory = Path(directory)
    if not directory.is_dir():
        reason = "not a directory" if directory.exists() else "no such directory"
        raise FileProblems([Problem(str(directory), None, "", reason)])
    files = []
    for folder in [directory, *(directory / d for d in TOPOLOGY_DIRS)]:
        files += sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    return [f for f in files if f.name != CONTRACT_FILE]


def load_scenarios(source: Path | str | list[Path]) -> dict[str, tuple[Scenario, Path]]:
    """Every scenario (variants included) of a directory or a list of files, by ID; all files'
    problems reported together, among them an ID or alias that names two scenarios."""
    files = [Path(p) for p in source] if isinstance(source, list) else scenario_files(source)
    found, problems = _load_files(files)
    problems += identity_problems(list(found.values()))
    if problems:
        raise FileProblems(problems)
    return found


def _load_files(files: list[Path]) -> tuple[dict[str, tuple[Scenario, Path]], list[Problem]]:
    problems: list[Problem] = []
    found: dict[str, tuple[Scenario, Path]] = {}
    for path in files:
        try:
            scenarios = _load_file(path)
        except FileProblems as exc:
            problems += exc.problems
            continue
        for scenario in scenarios:
            if scenario.id in found:
                other = found[scenario.id][1]
                problems.append(
                    Problem(
                        str(path),
                        _id_line(path),
                        "id",
                        f"scenario {scenario.id} is also defined in {other}",
                    )
                )
                continue
            found[scenario.id] = (scenario, path)
    return found, problems


def identity_problems(entries: list[tuple[Scenario, Path]]) -> list[Problem]:
    """Aliases that name two scenarios: an alias that is another scenario's ID (`run ID` would
    be ambiguous), or an alias two scenarios share. Reported at the later entry's alias."""
    bases = [(s, p) for s, p in entries if "@" not in s.id]
    ids = {s.id: p for s, p in bases}
    owner: dict[str, tuple[str, Path]] = {}
    problems: list[Problem] = []
    for scenario, path in bases:
        for i, alias in enumerate(scenario.aliases):
            if alias == scenario.id:
                continue  # an alias equal to its own ID names nothing new
            where = f"aliases[{i}]"
            if alias in ids:
                message = f"{alias!r} is the ID of another scenario ({ids[alias]})"
            elif alias in owner and owner[alias][0] != scenario.id:
                other_id, other = owner[alias]
                message = f"{alias!r} is also an alias of {other_id} ({other})"
            else:
                owner[alias] = (scenario.id, path)
                continue
            _, root = load_yaml(path)
            problems.append(Problem(str(path), locate(root, ["aliases", i]), where, message))
    return problems


def catalogue_clashes(
    chosen: dict[str, tuple[Scenario, Path]], directory: Path | str
) -> list[Problem]:
    """IDs and aliases of the `chosen` files that clash with the other files of the catalogue
    in `directory` (its unreadable files are skipped: they are not being validated)."""
    mine = {p.resolve() for _, p in chosen.values()}
    try:
        others = [p for p in scenario_files(directory) if p.resolve() not in mine]
    except FileProblems:
        return []
    rest, _ = _load_files(others)
    problems = []
    for scenario, path in chosen.values():
        if scenario.id in rest and "@" not in scenario.id:
            message = f"scenario {scenario.id} is also defined in {rest[scenario.id][1]}"
            problems.append(Problem(str(path), _id_line(path), "id", message))
    entries = list(rest.values()) + list(chosen.values())
    return problems + [p for p in identity_problems(entries) if Path(p.file).resolve() in mine]


def _id_line(path: Path) -> int | None:
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if re.match(r"^id\s*:", line):
            return number
    return None


_ID = re.compile(r"^([A-Z]+)-?(\d+)$")
_ID_GROUPS = {"S": 0, "JS": 1, "NATS": 2, "PERF": 3}


def id_order(scenario_id: str) -> tuple[int, str, int, str]:
    """S1–S3, then JS-, NATS-, PERF- (the coverage matrix order), numerically within each; a
    scenario's variants right after it."""
    base, _, variant = scenario_id.partition("@")
    match = _ID.match(base)
    prefix, number = match.groups() if match else (base, "0")
    return _ID_GROUPS.get(prefix, 9), prefix, int(number), variant


class UnknownScenarios(HarnessError):
    """IDs or aliases that name no scenario of the catalogue; the message lists the known ones."""


def select_scenarios(
    catalogue: dict[str, tuple[Scenario, Path]],
    ids: list[str],
    run_all: bool = False,
    variants: bool = False,
) -> list[Scenario]:
    """The scenarios a run asked for (IDs or aliases, or all), in catalogue order, each once;
    the CLI and the service both choose this way."""
    ordered = [s for s, _ in sorted(catalogue.values(), key=lambda i: id_order(i[0].id))]
    if run_all:
        return ordered
    named: dict[str, list[Scenario]] = {}
    for s in ordered:
        for name in dict.fromkeys([s.id, *([] if "@" in s.id else s.aliases)]):
            named.setdefault(name, []).append(s)
    unknown = [i for i in ids if i not in named]
    if unknown:
        raise UnknownScenarios(
            f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(catalogue))}"
        )
    ambiguous = [i for i in ids if len(named[i]) > 1]
    if ambiguous:
        raise UnknownScenarios(
            "; ".join(
                f"{i!r} names {' and '.join(s.id for s in named[i])}: use the ID" for i in ambiguous
            )
        )
    chosen = [named[i][0] for i in ids]
    if variants:
        bases = {s.id for s in chosen}
        chosen += [s for s in ordered if s.base_id in bases and s.id != s.base_id]
    unique: dict[str, Scenario] = {}
    for scenario in chosen:
        unique.setdefault(scenario.id, scenario)
    return list(unique.values())
