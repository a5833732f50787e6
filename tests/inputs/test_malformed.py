"""A corpus of malformed inputs: every one gets a clear answer, fast, with no traceback.

Each case writes its files into a temporary directory and runs one `harness` command in-process
(Typer's CliRunner), then asserts the exit code (2 bad input, 1 a cross-check failed), that the
message names the file, the line and the field where they apply, that no traceback and no raw
control character reached the output, and that it took at most a few seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.paths import project_root

ROOT = project_root()
CONTRACT = (ROOT / "scenarios" / "alerting-contract.yaml").read_text()
COMPOSE = (ROOT / "deploy" / "targets" / "compose.yaml").read_text()
SECONDS = 5.0

GOOD = """\
id: TST-901
title: A scenario of the input corpus
faults:
  - kind: toxic
    proxy: router_nats
    type: latency
    stream: upstream
    attributes: {latency: 1500}
    duration: 15m
workload:
  rate: 20
expect:
  metrics:
    - query: sum(rate(router_nats_ack_failures_total[$window]))
      moved: up
  alerts:
    fire: [RouterNatsHighAckFailureRate]
    forbid: [RouterNatsConnectionDown]
  dashboards:
    - {dashboard: router-jetstream, panel: "NATS ACK Failures by Reason"}
"""


@dataclass
class Case:
    name: str
    argv: list[str]
    code: int
    expect: list[str] = field(default_factory=list)
    files: dict[str, str | bytes] = field(default_factory=dict)


def line_of(text: str, marker: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if marker in line)


def scenario(name: str, text: str | bytes, code: int, *expect: str) -> Case:
    """`validate s.yaml`; `{L:marker}` in an expectation is the line of `marker` in the file."""
    shown = text if isinstance(text, str) else ""
    resolved = []
    for e in expect:
        while "{L:" in e:
            start = e.index("{L:")
            end = e.index("}", start)
            e = e[:start] + str(line_of(shown, e[start + 3 : end])) + e[end + 1 :]
        resolved.append(e)
    return Case(name, ["validate", "{tmp}/s.yaml"], code, resolved, {"s.yaml": text})


def edit(old: str, new: str, base: str = GOOD) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


BOMB = (
    "id: TST-901\n"
    + "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
)

SCENARIOS = [
    scenario("binary", b"id: TST-901\x00\x01\x02", 2, "s.yaml:1:", "binary file"),
    scenario(
        "latin1",
        GOOD.replace("A scenario", "Un sc\xe9nario").encode("latin-1"),
        2,
        "s.yaml:2:",
        "not UTF-8 text (byte 0xe9)",
    ),
    scenario("alias-bomb", BOMB, 2, "s.yaml:", "aliases expand this document past"),
    scenario("alias-recursive", "id: TST-901\na: &a [x, *a]\n", 2, "s.yaml:2:", "refers to itself"),
    scenario("too-large", "# x\n" * (1_200_000), 2, "s.yaml:", "too large"),
    scenario("empty", "", 2, "s.yaml:1:", "file is empty"),
    scenario("only-comments", "# nothing\n# here\n", 2, "s.yaml:1:", "file is empty"),
    scenario("top-level-list", "- id: TST-901\n", 2, "s.yaml:1:", "expected a mapping"),
    scenario("top-level-scalar", "just words\n", 2, "s.yaml:1:", "expected a mapping"),
    scenario("two-documents", GOOD + "---\nid: TST-902\n", 2, "s.yaml:", "single document"),
    scenario(
        "duplicate-key",
        edit("workload:", "title: again\nworkload:"),
        2,
        "s.yaml:{L:title: again} title: duplicate key (first defined on line 2)",
    ),
    scenario("tab-indent", edit("  rate: 20", "\trate: 20"), 2, "s.yaml:", "YAML syntax error"),
    scenario("unclosed-quote", edit("title: A", 'title: "A'), 2, "YAML syntax error"),
    scenario(
        "unknown-top-key", GOOD + "colour: blue\n", 2, "s.yaml:{L:colour} colour: unknown key"
    ),
    scenario("missing-id", edit("id: TST-901\n", ""), 2, "s.yaml:1 id: required field is missing"),
    scenario(
        "bad-id",
        edit("id: TST-901", "id: tst-1"),
        2,
        "s.yaml:1 id: String should match pattern '^(S[1-9]\\d*|JS-\\d{3}|",
    ),
    scenario(
        "missing-title",
        edit("title: A scenario of the input corpus\n", ""),
        2,
        "s.yaml:1 title: required field is missing",
    ),
    scenario("faults-empty", GOOD.split("faults:")[0] + "faults: []\n", 2, "s.yaml:3 faults:"),
    scenario(
        "fault-unknown-kind",
        edit("kind: toxic", "kind: meteor"),
        2,
        "s.yaml:{L:meteor} faults[0].kind: unknown value 'meteor'",
    ),
    scenario(
        "fault-no-duration",
        edit("    duration: 15m\n", ""),
        2,
        "faults[0].duration: required field is missing",
    ),
    scenario(
        "duration-no-unit",
        edit("duration: 15m", "duration: 15"),
        2,
        "s.yaml:{L:duration: 15} faults[0].duration: must be a duration string",
    ),
    scenario(
        "duration-absurd",
        edit("duration: 15m", "duration: 100000h"),
        2,
        "s.yaml:{L:100000h} faults[0].duration:",
        "longer than a week",
    ),
    scenario(
        "duration-negative",
        edit("duration: 15m", "duration: -5s"),
        2,
        "faults[0].duration: invalid duration '-5s'",
    ),
    scenario(
        "latency-negative",
        edit("latency: 1500", "latency: -1"),
        2,
        "s.yaml:{L:{latency} faults[0].attributes",
    ),
    scenario(
        "rate-string", edit("rate: 20", "rate: fast"), 2, "s.yaml:{L:rate: fast} workload.rate:"
    ),
    scenario(
        "rate-negative", edit("rate: 20", "rate: -3"), 2, "s.yaml:{L:rate: -3} workload.rate:"
    ),
    scenario(
        "mix-not-one",
        edit("rate: 20", "rate: 20\n  mix: {valid: 0.5}"),
        2,
        "s.yaml:{L:mix} workload",
    ),
    scenario(
        "fire-not-list",
        edit("fire: [RouterNatsHighAckFailureRate]", "fire: Router"),
        2,
        "s.yaml:{L:fire: Router} expect.alerts.fire:",
    ),
    scenario(
        "python-tag",
        edit("title: A", "title: !!python/object:os.system A"),
        2,
        "s.yaml:2:",
        "YAML syntax error",
        "constructor",
    ),
    scenario("unhashable-key", GOOD + "? [a, b]\n: c\n", 2, "s.yaml:", "YAML syntax error"),
    scenario("deep-nesting", "id: TST-901\nx: " + "[" * 5000 + "]" * 5000 + "\n", 2, "s.yaml"),
    scenario(
        "variant-bad-fault-index",
        GOOD + "variants:\n  - name: up\n    faults: {3: {duration: 1m}}\n",
        2,
        "s.yaml:",
        "overrides faults [3] that do not exist",
    ),
    scenario(
        "variant-bad-name",
        GOOD + "variants:\n  - name: Up High\n",
        2,
        "s.yaml:{L:Up High} variants[0].name:",
    ),
    scenario(
        "markup-in-key",
        GOOD + "'[bold red]x[/bold red] name:secret:role': 1\n",
        2,
        "[bold red]x[/bold red] name:secret:role: unknown key",
    ),
    scenario("escape-in-key", GOOD + '"\\e[31mred": 1\n', 2, "\\x1b[31mred: unknown key"),
    # readable, but the cross-checks fail: exit 1
    scenario(
        "promql-unclosed",
        edit("[$window]))", "[$window])"),
        1,
        "s.yaml:{L:query} expect.metrics[0].query: not PromQL: unclosed",
    ),
    scenario(
        "promql-brace",
        edit("ack_failures_total[$window]", 'ack_failures_total{a="b"[$window]'),
        1,
        "s.yaml:{L:query} expect.metrics[0].query: not PromQL",
    ),
    scenario(
        "unknown-dashboard",
        edit("dashboard: router-jetstream", "dashboard: nowhere"),
        1,
        "s.yaml:{L:nowhere} expect.dashboards[0].dashboard: no dashboard 'nowhere'",
    ),
    scenario(
        "unknown-panel",
        edit("NATS ACK Failures by Reason", "No Such Panel"),
        1,
        "s.yaml:{L:No Such} expect.dashboards[0].panel:",
        "has no panel 'No Such Panel'",
    ),
    scenario(
        "alias-is-other-id",
        edit("title:", "aliases: [S2, NATS-001]\ntitle:"),
        1,
        "s.yaml:2 aliases[0]: 'S2' is the ID of another scenario",
        "s.yaml:2 aliases[1]: 'NATS-001' is the ID of another scenario",
    ),
    scenario(
        "alias-shared",
        edit("title:", 'aliases: ["A:NATS-002 connection down"]\ntitle:'),
        1,
        "s.yaml:2 aliases[0]: 'A:NATS-002 connection down' is also an alias of NATS-002",
    ),
    scenario(
        "id-of-catalogue",
        edit("id: TST-901", "id: S1"),
        1,
        "s.yaml:1 id: scenario S1 is also defined in",
    ),
    scenario(
        "alert-not-in-contract",
        edit("[RouterNatsConnectionDown]", "[RouterNatsConnDown]"),
        1,
        "s.yaml:{L:ConnDown} expect.alerts.forbid[0]: the alerting contract does not describe",
    ),
    scenario(
        "metric-not-in-contract",
        edit("router_nats_ack_failures_total", "router_nope_total"),
        1,
        "s.yaml:{L:query} expect.metrics[0].query: metric 'router_nope_total'",
    ),
]


def contract(name: str, text: str | bytes, code: int, *expect: str) -> Case:
    shown = text if isinstance(text, str) else ""
    resolved = [
        e.replace("{L:receiver}", str(line_of(shown, "router-nowhere"))) if "{L:" in e else e
        for e in expect
    ]
    return Case(name, ["validate", "{tmp}/c.yaml"], code, resolved, {"c.yaml": text})


def cedit(old: str, new: str) -> str:
    assert old in CONTRACT, old
    return CONTRACT.replace(old, new, 1)


FIRST = "RouterJetStreamHighRedeliveryRate"
CONTRACTS = [
    contract("contract-binary", b"schema: harness.contract/v1\n\x00", 2, "c.yaml:2:", "binary"),
    contract(
        "contract-latin1",
        cedit("team: platform", "team: \xe9quipe").encode("latin-1", "replace"),
        2,
        "c.yaml:",
        "not UTF-8 text",
    ),
    contract("contract-no-version", cedit("version: 1\n", ""), 2, "c.yaml:", "version: required"),
    contract(
        "contract-schema",
        cedit("harness.contract/v1", "harness.contract/v9"),
        2,
        "c.yaml:",
        "schema:",
    ),
    contract(
        "contract-signal-promql",
        cedit("[$window]))\n", "[$window])\n"),
        1,
        "c.yaml:",
        f"alerts.{FIRST}.threshold.signal: not PromQL",
    ),
    contract(
        "contract-receiver",
        cedit("receiver: router-warning", "receiver: router-nowhere"),
        1,
        f"c.yaml:{{L:receiver}} alerts.{FIRST}.receiver: receiver 'router-nowhere' is not in",
    ),
    contract(
        "contract-absurd",
        cedit("detect_within: 10m30s", "detect_within: 100000h"),
        2,
        f"alerts.{FIRST}.detect_within:",
        "longer than a week",
    ),
    contract("contract-bad-op", cedit('op: ">"', 'op: ">>"'), 2, f"alerts.{FIRST}.threshold.op:"),
    contract(
        "contract-no-severity",
        cedit("{severity: warning, ", "{"),
        2,
        f"alerts.{FIRST}.labels:",
        "severity",
    ),
]


def target(name: str, text: str | bytes, code: int, *expect: str) -> Case:
    return Case(
        name, ["validate", "--target", "{tmp}/t.yaml"], code, list(expect), {"t.yaml": text}
    )


def tedit(old: str, new: str) -> str:
    assert old in COMPOSE, old
    return COMPOSE.replace(old, new, 1)


TARGETS = [
    target(
        "target-port-70000",
        tedit("0.0.0.0:14222", "0.0.0.0:70000"),
        2,
        f"t.yaml:{line_of(COMPOSE, 'listen')} proxies.router_nats.listen:",
        "1..65535",
    ),
    target(
        "target-listen-no-port",
        tedit("0.0.0.0:14222", "0.0.0.0"),
        2,
        "proxies.router_nats.listen: must be host:port",
    ),
    target(
        "target-nats-http",
        tedit("nats://127.0.0.1:4222", "http://127.0.0.1:4222"),
        2,
        f"t.yaml:{line_of(COMPOSE, 'nats_url')} nats_url:",
    ),
    target(
        "target-url-port",
        tedit("127.0.0.1:9090", "127.0.0.1:99999"),
        2,
        f"t.yaml:{line_of(COMPOSE, 'prometheus_url')} prometheus_url: bad port",
    ),
    target("target-unknown-key", COMPOSE + "colour: blue\n", 2, "t.yaml:", "colour: unknown key"),
    target("target-bad-kind", tedit("kind: external", "kind: cloud"), 2, "t.yaml:3 kind:"),
    target("target-binary", b"name: x\x00", 2, "t.yaml:1:", "binary"),
    target(
        "target-no-nats",
        tedit("nats_url: nats://127.0.0.1:4222\n", ""),
        2,
        "nats_url: required field is missing",
    ),
    target(
        "target-slow-clock",
        tedit("time_compression: 1", "time_compression: 0.5"),
        2,
        "profile.time_compression:",
    ),
    target("target-missing", "", 2, "t.yaml:1:", "file is empty"),
]

S = ["--scenarios", "{tmp}/cat"]
CAT = {"cat/s.yaml": GOOD}
CLI = [
    Case(
        "slots-zero",
        ["run", "TST-901", "--dry-run", "--profile", "local", "--slots", "0", *S],
        2,
        ["--slots: must be auto or 1..8, got '0'"],
        CAT,
    ),
    Case(
        "slots-negative",
        ["run", "TST-901", "--dry-run", "--slots", "-1", *S],
        2,
        ["--slots: must be auto"],
        CAT,
    ),
    Case(
        "slots-word",
        ["run", "TST-901", "--dry-run", "--slots", "abc", *S],
        2,
        ["--slots: must be auto"],
        CAT,
    ),
    Case(
        "nats-cluster-two",
        ["up", "--nats-cluster", "2", "--run-dir", "{tmp}/run"],
        2,
        ["--nats-cluster: must be 1 or 3, got 2"],
        CAT,
    ),
    Case(
        "cluster-slots-too-many",
        ["up", "--slots", "7", "--cluster-slots", "2", "--run-dir", "{tmp}/run"],
        2,
        ["--cluster-slots: must be auto or 0..1 beside 7 slot(s), got '2'"],
        CAT,
    ),
    Case(
        "out-is-file",
        ["run", "TST-901", "--dry-run", "--out", "{tmp}/cat/s.yaml", *S],
        2,
        ["--out: ", "exists and is not a directory"],
        CAT,
    ),
    Case(
        "out-under-file",
        ["run", "TST-901", "--dry-run", "--out", "{tmp}/cat/s.yaml/x", *S],
        2,
        ["--out: ", "is not a directory"],
        CAT,
    ),
    Case(
        "ids-and-all",
        ["run", "TST-901", "--all", "--dry-run", *S],
        2,
        ["--all: name scenario IDs (TST-901) or --all, not both"],
        CAT,
    ),
    Case(
        "unknown-id", ["run", "TST-999", "--dry-run", *S], 2, ["unknown scenario(s) TST-999"], CAT
    ),
    Case("no-ids", ["run", "--dry-run", *S], 2, ["name scenario IDs to run, or --all"], CAT),
    Case(
        "bad-profile",
        ["run", "TST-901", "--dry-run", "--profile", "warp", *S],
        2,
        ["--profile: unknown profile 'warp'"],
        CAT,
    ),
    Case(
        "list-nonexistent",
        ["list", "--scenarios", "{tmp}/nowhere"],
        2,
        ["--scenarios: ", "nowhere: no such directory"],
    ),
    Case("list-file", ["list", "--scenarios", "{tmp}/cat/s.yaml"], 2, ["not a directory"], CAT),
    Case(
        "list-empty-dir",
        ["list", "--scenarios", "{tmp}/cat"],
        2,
        ["no scenario files"],
        {"cat/README.md": "nothing"},
    ),
    Case(
        "list-binary-in-dir",
        ["list", *S],
        2,
        ["cat/b.yaml:1:", "binary file"],
        {**CAT, "cat/b.yaml": b"\x7fELF\x00\x00"},
    ),
    Case("validate-dir-as-file", ["validate", "{tmp}/cat"], 2, ["cat: is a directory"], CAT),
    Case(
        "validate-missing-file", ["validate", "{tmp}/none.yaml"], 2, ["none.yaml: file not found"]
    ),
    Case(
        "validate-two-contracts",
        ["validate", "{tmp}/c.yaml", "--contract", "{tmp}/c.yaml"],
        2,
        ["--contract: one contract at a time"],
        {"c.yaml": CONTRACT},
    ),
    Case(
        "report-out-file",
        ["report", "{tmp}/run", "--out", "{tmp}/f"],
        2,
        ["--out: ", "f exists and is not a directory"],
        {"f": "x", "run/evidence.json": "{}"},
    ),
    Case("coverage-nothing", ["coverage"], 2, ["name run directories, or --claimed FILE"]),
    Case(
        "coverage-stale-after",
        ["coverage", "{tmp}/run", "--stale-after", "soon"],
        2,
        ["--stale-after: invalid duration 'soon'"],
    ),
    Case(
        "coverage-claimed-binary",
        ["coverage", "--claimed", "{tmp}/m.md"],
        2,
        ["m.md:1:", "binary file"],
        {"m.md": b"| Scenario |\x00"},
    ),
    Case(
        "coverage-claimed-bad-row",
        ["coverage", "--claimed", "{tmp}/m.md"],
        2,
        ["m.md: line 3: unknown scenario ID S77"],
        {
            "m.md": "| Scenario | Tests | Metrics | Alerts | Dashboards |\n|---|---|---|---|---|\n"
            "| S77 | ✅ | ✅ | ✅ | ✅ |\n"
        },
    ),
    Case("coverage-no-run", ["coverage", "{tmp}/nowhere"], 2, ["nowhere: no evidence.json"]),
    Case(
        "coverage-binary-evidence",
        ["coverage", "{tmp}/run"],
        2,
        ["run/evidence.json:1:", "binary file"],
        {"run/evidence.json": b"{\x00}"},
    ),
    Case(
        "coverage-latin1-evidence",
        ["coverage", "{tmp}/run"],
        2,
        ["run/evidence.json:1:", "not UTF-8"],
        {"run/evidence.json": b'{"a": "\xe9"}'},
    ),
]

CASES = SCENARIOS + CONTRACTS + TARGETS + CLI


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60, len(CASES)
    assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


def invoke(argv: list[str], tmp: Path) -> tuple[int, str, float]:
    runner = CliRunner()
    started = time.monotonic()
    result = runner.invoke(app, [a.replace("{tmp}", str(tmp)) for a in argv])
    elapsed = time.monotonic() - started
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}"
    )
    return result.exit_code, result.output, elapsed


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input_is_answered_clearly(case: Case, tmp_path: Path) -> None:
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    code, output, elapsed = invoke(case.argv, tmp_path)
    flat = " ".join(output.split())
    assert code == case.code, output
    for expected in case.expect:
        assert " ".join(expected.split()) in flat, f"{expected!r} not in:\n{output}"
    assert "Traceback" not in output
    assert "\x1b" not in output, "a control character of the input reached the terminal"
    assert elapsed < SECONDS, f"took {elapsed:.1f}s"
