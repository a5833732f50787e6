"""The input layer: every file the harness reads, bounded, decoded and parsed, then validated
into pydantic models, every problem reported with its file, line and field path.

Users edit targets, scenarios and the contract by hand; an error that says `scenarios/s1.yaml:14
faults[0].attributes.latency: must be ≥ 0` lets them fix it without reading our code. In order:
the file must be a regular file no larger than `MAX_FILE_BYTES`; its bytes must be UTF-8 text
(no NUL byte); the YAML is composed by the safe loader, with aliases expanded at most to
`MAX_NODES` nodes (a "billion laughs" file fails at once instead of hanging); then the schema.
Messages carry the user's text verbatim, control characters escaped, one line per problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError

M = TypeVar("M", bound=BaseModel)

MAX_FILE_BYTES = 4 * 1024 * 1024
"""The largest hand-written file read (the largest shipped scenario is about 5 kB)."""
MAX_NODES = 100_000
"""The most YAML nodes a document may expand to, aliases followed (the catalogue's largest has
about 300)."""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where} {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        return one_line(text)


def one_line(text: str) -> str:
    """`text` on one line, control characters (newlines, ANSI escapes) shown as escapes."""
    return _CONTROL.sub(lambda m: repr(m.group(0))[1:-1], text.replace("\n", "\\n"))


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


def read_text(path: Path | str, *, display: str | None = None, limit: int = MAX_FILE_BYTES) -> str:
    """The text of a regular file of at most `limit` bytes, decoded as UTF-8; anything else
    (missing, a directory, too large, binary, another encoding) is a FileProblems naming it."""
    path = Path(path)
    file = display or str(path)

    def problem(message: str, line: int | None = None) -> FileProblems:
        return FileProblems([Problem(file, line, "", message)])

    try:
        if path.is_dir():
            raise problem("is a directory, not a file")
        if not path.exists():
            raise problem("file not found")
        if not path.is_file():
            raise problem("not a regular file")
        size = path.stat().st_size
        if size > limit:
            raise problem(f"too large: {_size(size)}, the limit is {_size(limit)}")
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise problem(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise problem(f"too large: more than {_size(limit)}")
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise problem("binary file (a NUL byte), expected UTF-8 text", line)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start]
        raise problem(f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8", line) from None


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def _expanded_size(root: yaml.Node, file: str, limit: int) -> None:
    """Refuse a document whose aliases expand it past `limit` nodes, or refer to themselves.
    Sizes are memoised per node, so this takes time in the size of the file, not of the
    expansion."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            line = node.start_mark.line + 1
            raise FileProblems([Problem(file, line, "", "YAML alias refers to itself")])
        open_.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_.discard(key)
        sizes[key] = total
        if total > limit:
            line = node.start_mark.line + 1
            raise FileProblems(
                [
                    Problem(
                        file,
                        line,
                        "",
                        f"YAML aliases expand this document past {limit} nodes; write it out "
                        "without aliases nested in aliases",
                    )
                ]
            )
        return total

    size(root)


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's scanner and parser under the same safe constructor: the same data, several times
faster (the catalogue, rules and contracts are read on every command)."""


def parse_yaml(text: str, file: str, *, max_nodes: int = MAX_NODES) -> tuple[Any, yaml.Node]:
    """Data and node tree of one YAML document, by the safe loader; syntax errors, duplicate
    keys, several documents and alias bombs as FileProblems. Composed by libyaml when PyYAML
    has it; a text it refuses is composed again by the pure-Python loader, whose messages name
    the offending character or alias."""
    if _FAST_LOADER is not yaml.SafeLoader:
        try:
            return _compose(_FAST_LOADER, text, file, max_nodes)
        except (yaml.YAMLError, RecursionError):
            pass
    try:
        return _compose(yaml.SafeLoader, text, file, max_nodes)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise FileProblems([Problem(file, line, "", f"YAML syntax error: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise FileProblems([Problem(file, None, "", f"YAML error: {exc}")]) from None
    except RecursionError:
        raise FileProblems([Problem(file, None, "", "YAML nested too deeply")]) from None


def _compose(
    loader_class: type[yaml.SafeLoader], text: str, file: str, max_nodes: int
) -> tuple[Any, yaml.Node]:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise FileProblems([Problem(file, 1, "", "file is empty")])
        _expanded_size(root, file, max_nodes)
        duplicates = _duplicate_keys(root, file, [])
        if duplicates:
            raise FileProblems(duplicates)
        return loader.construct_document(root), root
    finally:
        loader.dispose()


def load_yaml(path: Path | str, *, display: str | None = None) -> tuple[Any, yaml.Node]:
    """A YAML file read through every check of this layer: (data, node tree)."""
    file = display or str(path)
    return parse_yaml(read_text(path, display=file), file)


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
    file = display or str(path)
    return validate_text(model, read_text(path, display=file), file)


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
