"""The test suite's own conventions: a file with live tests (real components) ends in `_live.py`
and every such file has them, so `make unit` and a reader can tell them apart by name."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _is_live_mark(node: ast.expr) -> bool:
    return "mark.live" in ast.unparse(node)


def live_tests(path: Path) -> tuple[int, int]:
    """(live tests, other tests) defined at the top level of a test file."""
    tree = ast.parse(path.read_text())
    module_live = any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        and "mark.live" in ast.unparse(node.value)
        for node in tree.body
    )
    live = other = 0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test_"
        ):
            if module_live or any(_is_live_mark(d) for d in node.decorator_list):
                live += 1
            else:
                other += 1
    return live, other


def test_live_tests_live_in_files_named_live() -> None:
    files = sorted(TESTS.rglob("test_*.py"))
    assert len(files) > 50, "the test files were not found"
    misnamed = [
        str(f.relative_to(TESTS))
        for f in files
        if live_tests(f)[0] and not f.name.endswith("_live.py")
    ]
    assert misnamed == [], "live tests outside a *_live.py file"
    unit_only = [
        str(f.relative_to(TESTS))
        for f in files
        if f.name.endswith("_live.py") and not live_tests(f)[0]
    ]
    assert unit_only == [], "a *_live.py file without live tests"
