"""Cross-check scenarios, the alerting contract and the rules before anything runs.

A scenario that expects an alert the contract does not describe, a metric the router does not
export, a label the harness itself supplies, or an absolute bound with nothing relative to the
baseline can never give an honest verdict; a contract objective the rule cannot meet even in
theory can never pass. `harness validate` says so, with file, line and field.
"""

from __future__ import annotations

from pathlib import Path

from harness.checks.alerts import rule_floor
from harness.checks.dashboards import load_dashboards, panels
from harness.checks.metrics import MEANINGLESS_LABEL_VALUES
from harness.config import Target
from harness.contract import Contract
from harness.durations import format_duration, parse_duration
from harness.faults import DRIVERS
from harness.plan import fits
from harness.promql import base_metric, kept_labels, metric_names, syntax_errors, threshold
from harness.rulefiles import alert_rules, rule_files
from harness.scenario import Scenario
from harness.yamlfile import Problem, load_yaml, locate

# Series Prometheus itself, or components other than the router, provide.
NON_ROUTER_METRICS = {"ALERTS", "ALERTS_FOR_STATE", "up", "scrape_duration_seconds"}
NON_ROUTER_PREFIXES = ("toxiproxy_", "harness_", "prometheus_", "alertmanager_")


def alert_names(rules_dir: Path) -> set[str]:
    """Every alert defined in the rule files of `rules_dir`."""
    return set(alert_rules(rules_dir))


def contract_metrics(contract: Path) -> tuple[set[str], set[str]]:
    """(every metric name, the histogram names) of the metric contract: the router's metrics
    and the NATS exporter's families it lists (`nats_exporter`)."""
    doc, _ = load_yaml(contract)
    doc = doc or {}
    nats = doc.get("nats_exporter") or {}
    metrics = [
        *(doc.get("metrics") or []),
        *(nats.get("metrics") or []),
        *(nats.get("official") or []),
    ]
    return (
        {m["name"] for m in metrics},
        {m["name"] for m in metrics if m.get("type") == "histogram"},
    )


def unknown_metrics(query: str, known: set[str], histograms: set[str]) -> list[str]:
    """Metric names in `query` that neither the contract nor Prometheus itself provides."""
    return sorted(
        name
        for name in metric_names(query)
        if base_metric(name, histograms) not in known
        and name not in NON_ROUTER_METRICS
        and not name.startswith(NON_ROUTER_PREFIXES)
    )


Found = tuple[tuple[str | int, ...], str, str]  # (location in the file, field, message)


def cross_check(
    scenarios: dict[str, tuple[Scenario, Path]],
    deploy_dir: Path,
    contract: Contract,
    target: Target | None = None,
) -> list[Problem]:
    """Problems of every scenario against the contract, the rules, the metric contract and
    (if given) the target. A variant's own problems point at the variant."""
    alerts = alert_names(deploy_dir / "prometheus" / "rules")
    metrics = contract_metrics(deploy_dir / "metrics-contract.yaml")
    queries = sorted({m.query for s, _ in scenarios.values() for m in s.expect.metrics})
    bad = {queries[i]: why for i, why in syntax_errors(queries).items()}
    boards_dir = dashboards_dir(deploy_dir, target)
    boards, problems = _dashboards(boards_dir, scenarios)
    found: dict[str, set[Found]] = {}
    for scenario, path in sorted(scenarios.values(), key=lambda item: "@" in item[0].id):
        mine = set(_scenario_problems(scenario, deploy_dir, alerts, metrics, contract, target))
        mine |= set(_query_problems(scenario, bad))
        if boards is not None:
            mine |= set(_panel_problems(scenario, boards, boards_dir))
        _, root = load_yaml(path)
        base, _, variant = scenario.id.partition("@")
        if variant:
            mine -= found.get(base, set())
            index = _variants(path).index(variant)
            problems += [
                Problem(
                    str(path), locate(root, ["variants", index]), f"{field} ({scenario.id})", msg
                )
                for _, field, msg in mine
            ]
        else:
            found[base] = mine
            problems += [
                Problem(str(path), locate(root, list(loc)), field, msg) for loc, field, msg in mine
            ]
    return sorted(problems, key=lambda p: (p.file, p.line or 0, p.field))


def dashboards_dir(deploy_dir: Path, target: Target | None) -> Path:
    """The dashboards the target serves (its `dashboards_dir`), else those of `deploy/`."""
    if target is not None and target.dashboards_dir:
        return Path(target.dashboards_dir)
    return deploy_dir / "grafana" / "dashboards"


def _dashboards(
    directory: Path, scenarios: dict[str, tuple[Scenario, Path]]
) -> tuple[dict[str, dict[str, object]] | None, list[Problem]]:
    """The dashboards by uid and file stem (None when no scenario names a panel)."""
    if not any(s.expect.dashboards for s, _ in scenarios.values()):
        return None, []
    try:
        return load_dashboards(directory), []
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bytes that are not UTF-8
        return {}, [Problem(str(directory), None, "", f"dashboards cannot be read: {exc}")]


def _query_problems(scenario: Scenario, bad: dict[str, str]) -> list[Found]:
    return [
        (
            ("expect", "metrics", i, "query"),
            f"expect.metrics[{i}].query",
            f"not PromQL: {bad[m.query]}",
        )
        for i, m in enumerate(scenario.expect.metrics)
        if m.query in bad
    ]


def _panel_problems(
    scenario: Scenario, boards: dict[str, dict[str, object]], directory: Path
) -> list[Found]:
    out: list[Found] = []
    for i, expected in enumerate(scenario.expect.dashboards):
        board = boards.get(expected.dashboard)
        loc = ("expect", "dashboards", i)
        if board is None:
            known = ", ".join(sorted(boards)) or "none"
            message = f"no dashboard {expected.dashboard!r} in {directory} (it has: {known})"
            out.append(((*loc, "dashboard"), f"expect.dashboards[{i}].dashboard", message))
            continue
        titles = [str(p.get("title")) for p in panels(board)]  # type: ignore[arg-type]
        if expected.panel not in titles:
            message = f"dashboard {expected.dashboard!r} has no panel {expected.panel!r}"
            out.append(((*loc, "panel"), f"expect.dashboards[{i}].panel", message))
    return out


def _scenario_problems(
    scenario: Scenario,
    deploy_dir: Path,
    alerts: set[str],
    metrics: tuple[set[str], set[str]],
    contract: Contract,
    target: Target | None,
) -> list[Found]:
    known, histograms = metrics
    out: list[Found] = []
    for key in ("fire", "forbid"):
        for i, name in enumerate(getattr(scenario.expect.alerts, key)):
            loc, field = ("expect", "alerts", key, i), f"expect.alerts.{key}[{i}]"
            if contract.get(name) is None:
                out.append((loc, field, f"the alerting contract does not describe {name!r}"))
            elif name not in alerts:
                rules = deploy_dir / "prometheus" / "rules"
                out.append((loc, field, f"no alert rule named {name!r} in {rules}"))
    if scenario.boundary is not None and contract.get(scenario.boundary.alert) is None:
        message = f"the alerting contract does not describe {scenario.boundary.alert!r}"
        out.append((("boundary",), "boundary.alert", message))
    supplied = _supplied_labels(scenario)
    for i, metric in enumerate(scenario.expect.metrics):
        loc = ("expect", "metrics", i)
        for name in unknown_metrics(metric.query, known, histograms):
            message = f"metric {name!r} is not in the router's metric contract"
            out.append(((*loc, "query"), f"expect.metrics[{i}].query", message))
        kept = kept_labels(metric.query)
        for key, value in metric.labels.items():
            at, field = (*loc, "labels", key), f"expect.metrics[{i}].labels.{key}"
            if value in MEANINGLESS_LABEL_VALUES:
                message = f"{value!r} names nothing: expect the real value the router must map to"
                out.append((at, field, message))
            if kept is not None and key not in kept:
                keeps = ", ".join(sorted(kept)) or "none"
                message = (
                    f"the query aggregates label {key!r} away (keeps: {keeps}): add it to by (...)"
                )
                out.append((at, field, message))
            if supplied.get(key) == value:
                message = (
                    f"{key}={value!r} is supplied by this scenario's own router_hook fault: "
                    "the check would confirm the harness, not the router's error mapping"
                )
                out.append((at, field, message))
    for i, fault in enumerate(scenario.faults):
        if not DRIVERS[fault.kind].through_toxiproxy and not fault.why:
            message = (
                f"a {fault.kind} fault is not driven through Toxiproxy: say why the wire "
                "cannot express it"
            )
            out.append((("faults", i, "kind"), f"faults[{i}].why", message))
    if target is not None:
        out += target_gaps(scenario, target)
    return out


def target_gaps(scenario: Scenario, target: Target) -> list[Found]:
    """What keeps `scenario` from running on `target`: a proxy it lacks, a process fault on an
    external stack."""
    out: list[Found] = []
    for i, fault in enumerate(scenario.faults):
        proxy = getattr(fault, "proxy", None)
        if proxy is not None and proxy not in target.proxies:
            has = ", ".join(sorted(target.proxies)) or "none"
            message = f"proxy {proxy!r} is not in target {target.name!r} (it has: {has})"
            out.append((("faults", i, "proxy"), f"faults[{i}].proxy", message))
        if fault.kind == "process" and target.kind != "local":
            message = f"process faults need a local stack; target {target.name!r} is external"
            out.append((("faults", i, "kind"), f"faults[{i}].kind", message))
    return out


def capability(scenarios: dict[str, tuple[Scenario, Path]], target: Target) -> dict[str, list[str]]:
    """Per scenario the target cannot run, why (`field: reason`, one per gap)."""
    gaps = {
        scenario_id: [f"{field}: {message}" for _, field, message in target_gaps(s, target)]
        + (
            []
            if fits(s, target)
            else [f"topology: needs a {s.topology} NATS target, this one is {target.topology.kind}"]
        )
        for scenario_id, (s, _) in scenarios.items()
    }
    return {k: sorted(set(v)) for k, v in gaps.items() if v}


def _variants(path: Path) -> list[str]:
    data, _ = load_yaml(path)
    return [v.get("name") for v in (data or {}).get("variants") or []]


def _supplied_labels(scenario: Scenario) -> dict[str, str]:
    labels: dict[str, str] = {}
    for fault in scenario.faults:
        supplied = getattr(fault, "supplied_labels", None)
        if supplied is not None:
            labels.update(supplied())
    return labels


def production_scrape_interval(deploy_dir: Path) -> float:
    """The scrape interval of the Prometheus config shipped in deploy/ (staging-like)."""
    path = deploy_dir / "prometheus" / "prometheus.yml"
    doc, _ = load_yaml(path)
    doc = doc or {}
    return parse_duration(str((doc.get("global") or {}).get("scrape_interval", "1m")))


def contract_problems(contract: Contract, contract_path: Path, deploy_dir: Path) -> list[Problem]:
    """Contract entries with no rule, rules with no entry, rules whose labels or final
    `OP number` comparison differ from the contract, and objectives a rule's floor
    (scrape + evaluation + `for:`) exceeds even in theory."""
    rules = alert_rules(deploy_dir / "prometheus" / "rules")
    _, root = load_yaml(contract_path)
    problems = []
    for name in sorted(set(contract.alerts) - set(rules)):
        problems.append(
            Problem(
                str(contract_path),
                locate(root, ["alerts", name]),
                f"alerts.{name}",
                f"no alert rule {name!r} in {deploy_dir / 'prometheus' / 'rules'}",
            )
        )
    problems += _signal_problems(contract, contract_path, root)
    problems += receiver_problems(contract, contract_path, root, deploy_dir)
    scrape = production_scrape_interval(deploy_dir)
    for name, (rule, group, path) in sorted(rules.items()):
        entry = contract.get(name)
        if entry is None:
            problems.append(
                Problem(
                    str(path), None, name, "this alert rule has no entry in the alerting contract"
                )
            )
            continue
        labels = rule.get("labels") or {}
        wrong = {k: v for k, v in entry.labels.items() if labels.get(k) != v}
        if wrong:
            shown = ", ".join(f"{k}={labels.get(k)!r} (contract: {v!r})" for k, v in wrong.items())
            message = f"labels differ from the alerting contract: {shown}"
            problems.append(Problem(str(path), None, name, message))
        trips = threshold(str(rule.get("expr", "")))
        promised = (entry.threshold.op, entry.threshold.value)
        if trips is not None and trips != promised:
            problems.append(
                Problem(
                    str(path),
                    None,
                    name,
                    f"the rule trips at {trips[0]} {trips[1]:g}, the alerting contract's "
                    f"threshold is {promised[0]} {promised[1]:g} ({entry.threshold.text})",
                )
            )
        evaluation = parse_duration(str(group.get("interval", "1m")))
        floor = rule_floor(scrape, evaluation, parse_duration(str(rule.get("for", "0s"))))
        if floor > entry.detect_within:
            problems.append(
                Problem(
                    str(contract_path),
                    locate(root, ["alerts", name, "detect_within"]),
                    f"alerts.{name}.detect_within",
                    f"the rule cannot fire within {format_duration(entry.detect_within)} even in "
                    f"theory: its floor is {format_duration(floor)} (scrape "
                    f"{format_duration(scrape)} + evaluation {format_duration(evaluation)} + "
                    f"for {rule.get('for', '0s')})",
                )
            )
    return problems


def _signal_problems(contract: Contract, contract_path: Path, root: object) -> list[Problem]:
    names = sorted(contract.alerts)
    bad = syntax_errors([contract.alerts[n].threshold.signal for n in names])
    return [
        Problem(
            str(contract_path),
            locate(root, ["alerts", names[i], "threshold", "signal"]),  # type: ignore[arg-type]
            f"alerts.{names[i]}.threshold.signal",
            f"not PromQL: {why}",
        )
        for i, why in sorted(bad.items())
    ]


def alertmanager_receivers(deploy_dir: Path) -> set[str]:
    """The receivers of the Alertmanager config under test (`deploy/alertmanager`)."""
    doc, _ = load_yaml(deploy_dir / "alertmanager" / "alertmanager.yml")
    return {str(r.get("name")) for r in (doc or {}).get("receivers") or [] if isinstance(r, dict)}


def receiver_problems(
    contract: Contract, contract_path: Path, root: object, deploy_dir: Path
) -> list[Problem]:
    """Contract receivers the Alertmanager config under test does not define: a finding about
    the config (its notifications would go nowhere the contract names). The contract stays the
    expectation; the config is never used to correct it."""
    config = deploy_dir / "alertmanager" / "alertmanager.yml"
    have = alertmanager_receivers(deploy_dir)
    return [
        Problem(
            str(contract_path),
            locate(root, ["alerts", name, "receiver"]),  # type: ignore[arg-type]
            f"alerts.{name}.receiver",
            f"receiver {entry.receiver!r} is not in {config} (it has: {', '.join(sorted(have))})",
        )
        for name, entry in sorted(contract.alerts.items())
        if entry.receiver not in have
    ]


def rule_floors(contract: Contract, deploy_dir: Path) -> list[tuple[str, float, float, str]]:
    """Per alert of the contract that has a rule: (alert, the rule's floor, the contract's
    detection objective, how the floor adds up), in production time."""
    rules = alert_rules(deploy_dir / "prometheus" / "rules")
    scrape = production_scrape_interval(deploy_dir)
    out = []
    for name, (rule, group, _) in sorted(rules.items()):
        entry = contract.get(name)
        if entry is None:
            continue
        evaluation = parse_duration(str(group.get("interval", "1m")))
        hold = str(rule.get("for", "0s"))
        floor = rule_floor(scrape, evaluation, parse_duration(hold))
        how = (
            f"scrape {format_duration(scrape)} + evaluation {format_duration(evaluation)} "
            f"+ for {hold}"
        )
        out.append((name, floor, entry.detect_within, how))
    return out


FileKind = str  # "scenario" | "contract" | "target"


def file_kind(data: object) -> FileKind:
    """What a YAML document is, by its content: the alerting contract (its `schema`), a target
    (its URLs), else a scenario."""
    if isinstance(data, dict):
        if str(data.get("schema", "")).startswith("harness.contract/") or (
            "alerts" in data and "id" not in data and "notification_allowance" in data
        ):
            return "contract"
        if "nats_url" in data or "toxiproxy_url" in data or "prometheus_url" in data:
            return "target"
    return "scenario"


def catalogue_problems(
    scenarios: dict[str, tuple[Scenario, Path]], deploy_dir: Path
) -> list[Problem]:
    """What the catalogue as a whole leaves unproven: an alert rule no scenario fires (nothing
    shows it can), and a forbidden alert no scenario fires (its silence proves nothing)."""
    fired = {a for s, _ in scenarios.values() for a in s.expect.alerts.fire}
    problems: list[Problem] = []
    for path in rule_files(deploy_dir / "prometheus" / "rules"):
        data, root = load_yaml(path)
        for g, group in enumerate((data or {}).get("groups") or []):
            for r, rule in enumerate(group.get("rules") or []):
                name = rule.get("alert")
                if name and name not in fired:
                    loc: list[str | int] = ["groups", g, "rules", r, "alert"]
                    problems.append(
                        Problem(
                            str(path),
                            locate(root, loc),
                            f"groups[{g}].rules[{r}].alert",
                            f"{name}: no scenario fires this rule, so nothing shows it can fire",
                        )
                    )
    for scenario, path in sorted(scenarios.values(), key=lambda item: item[0].id):
        if "@" in scenario.id:
            continue  # a variant inherits its base's forbid list: reported once, at the base
        _, root = load_yaml(path)
        for i, name in enumerate(scenario.expect.alerts.forbid):
            if name not in fired:
                loc = ["expect", "alerts", "forbid", i]
                problems.append(
                    Problem(
                        str(path),
                        locate(root, loc),
                        f"expect.alerts.forbid[{i}]",
                        f"{name} is forbidden here but no scenario fires it: its silence is "
                        "unproven",
                    )
                )
    return problems


def rule_problems(deploy_dir: Path) -> list[Problem]:
    """Rules that read metrics the router's contract does not have (a renamed metric, a typo):
    such a rule can never fire, whatever happens to the router."""
    known, histograms = contract_metrics(deploy_dir / "metrics-contract.yaml")
    problems: list[Problem] = []
    for path in rule_files(deploy_dir / "prometheus" / "rules"):
        data, root = load_yaml(path)
        for g, group in enumerate((data or {}).get("groups") or []):
            for r, rule in enumerate(group.get("rules") or []):
                for name in unknown_metrics(str(rule.get("expr", "")), known, histograms):
                    loc: list[str | int] = ["groups", g, "rules", r, "expr"]
                    label = rule.get("alert") or rule.get("record")
                    problems.append(
                        Problem(
                            str(path),
                            locate(root, loc),
                            f"groups[{g}].rules[{r}].expr",
                            f"{label}: metric {name!r} is not in the router's metric contract",
                        )
                    )
    return problems
