"""`parse_yaml` composes with libyaml when PyYAML has it: the same data and the same node lines
as the pure-Python loader on every shipped file, and a text libyaml refuses is answered with
the pure-Python loader's more precise message."""

from __future__ import annotations

import pytest
import yaml

from harness import yamlfile
from harness.paths import project_root
from harness.yamlfile import FileProblems, parse_yaml

ROOT = project_root()
SHIPPED = sorted(
    p
    for pattern in ("scenarios/**/*.yaml", "deploy/**/*.yml", "deploy/**/*.yaml")
    for p in ROOT.glob(pattern)
)


def lines(node: yaml.Node) -> list[tuple[str, int, int]]:
    out = [(node.tag, node.start_mark.line, node.start_mark.column)]
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out += lines(key) + lines(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out += lines(item)
    return out


def pure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlfile, "_FAST_LOADER", yaml.SafeLoader)


def test_libyaml_is_used_here() -> None:
    assert yamlfile._FAST_LOADER is yaml.CSafeLoader, "PyYAML without libyaml: slow inputs"


def test_both_loaders_give_the_same_data_and_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(SHIPPED) > 40, SHIPPED
    fast = {p: parse_yaml(p.read_text(), str(p)) for p in SHIPPED}
    pure(monkeypatch)
    for path in SHIPPED:
        data, root = parse_yaml(path.read_text(), str(path))
        assert fast[path][0] == data, path
        assert lines(fast[path][1]) == lines(root), path


@pytest.mark.parametrize(
    "text",
    [
        "id: [\n",
        "a:\n\t- x\n",
        "a: &x 1\nb: *y\n",
        "a: {b: c\n",
        "a: b: c\n",
        "a: 1\na: 2\n",
        "--- a\n--- b\n",
        "",
    ],
)
def test_refused_text_has_the_pure_loaders_message(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FileProblems) as fast:
        parse_yaml(text, "f.yaml")
    pure(monkeypatch)
    with pytest.raises(FileProblems) as slow:
        parse_yaml(text, "f.yaml")
    assert str(fast.value) == str(slow.value)


def test_an_undefined_alias_is_named() -> None:
    with pytest.raises(
        FileProblems, match="f.yaml:2: YAML syntax error: found undefined alias 'y'"
    ):
        parse_yaml("a: &x 1\nb: *y\n", "f.yaml")
