"""Load YAML into pydantic models, reporting every problem with its file, line and field path.

Users edit targets and scenarios by hand; an error that says `scenarios/s1.yaml:14
faults[0].attributes.latency: must be ≥ 0` lets them fix it without reading our code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class FileProblems(HarnessError):
    """Every problem found in one or more files, each on its own line."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def field_path(loc: Iterable[str | int]) -> str:
    """`('faults', 0, 'attributes')` → `faults[0].attributes`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _node_for(root: yaml.Node, loc: Sequence[str | int]) -> tuple[yaml.Node, list[str | int]]:
    """The deepest node `loc` reaches, and the loc parts that name real keys/indexes."""
    node = root
    kept: list[str | int] = []
    parts = list(loc)
    i = 0
    while i < len(parts):
        part = parts[i]
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
            if child is None:
                # A pydantic union tag (`faults.0.toxic.…`) names the value of the
                # discriminator key, not a key of its own: skip it.
                if any(
                    isinstance(v, yaml.ScalarNode) and v.value == str(part) for _, v in node.value
                ):
                    i += 1
                    continue
                kept.append(part)
                return node, kept + parts[i + 1 :]
            kept.append(part)
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                kept.append(part)
                return node, kept + parts[i + 1 :]
            kept.append(part)
            node = node.value[part]
        else:
            if isinstance(part, int) or not isinstance(node, yaml.ScalarNode):
                kept.append(part)
            return node, kept + parts[i + 1 :]
        i += 1
    return node, kept


def locate(root: yaml.Node, loc: Sequence[str | int]) -> int:
    """1-based line of the node at `loc` (or of the deepest node on the way there)."""
    node, _ = _node_for(root, loc)
    return node.start_mark.line + 1


def _duplicate_keys(node: yaml.Node, file: str, loc: list[str | int]) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in seen:
                problems.append(
                    Problem(
                        file,
                        line,
                        field_path([*loc, name]),
                        f"duplicate key (first defined on line {seen[name]})",
                    )
                )
            else:
                seen[name] = line
            problems += _duplicate_keys(value, file, [*loc, name])
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, file, [*loc, index])
    return problems


def parse_yaml(text: str, file: str) -> tuple[Any, yaml.Node]:
    """Data and node tree of a YAML document; syntax errors and duplicate keys as FileProblems."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise FileProblems([Problem(file, line, "", f"YAML syntax error: {reason}")]) from exc
    except yaml.YAMLError as exc:
        raise FileProblems([Problem(file, None, "", f"YAML error: {exc}")]) from exc
    if root is None:
        raise FileProblems([Problem(file, 1, "", "file is empty")])
    duplicates = _duplicate_keys(root, file, [])
    if duplicates:
        raise FileProblems(duplicates)
    data = yaml.SafeLoader(text).get_single_data()
    return data, root


def _message(error: dict[str, Any]) -> str:
    msg = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] in ("missing", "union_tag_not_found"):
        return "required field is missing"
    if error["type"] == "union_tag_invalid":
        expected = error.get("ctx", {}).get("expected_tags", "")
        return f"unknown value {error['ctx']['tag']!r}; expected one of {expected}"
    return msg.removeprefix("Value error, ")


def problems_from_validation(exc: ValidationError, root: yaml.Node, file: str) -> list[Problem]:
    """Turn pydantic's errors into positioned problems, in file order."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc += (str(error.get("ctx", {}).get("discriminator", "")).strip("'"),)
        node, loc = _node_for(root, loc)
        problems.append(Problem(file, node.start_mark.line + 1, field_path(loc), _message(error)))
    return sorted(problems, key=lambda p: (p.line or 0, p.field))


def load_model(model: type[M], path: Path | str, *, display: str | None = None) -> M:
    """Read `path` and validate it as `model`, raising FileProblems with every problem."""
    path = Path(path)
    file = display or str(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise FileProblems([Problem(file, None, "", "file not found")]) from exc
    except OSError as exc:
        raise FileProblems([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from exc
    return validate_text(model, text, file)


def validate_text(model: type[M], text: str, file: str) -> M:
    """Validate YAML text as `model`; `file` names it in errors."""
    data, root = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise FileProblems(
            [Problem(file, root.start_mark.line + 1, "", "expected a mapping at the top level")]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FileProblems(problems_from_validation(exc, root, file)) from exc
