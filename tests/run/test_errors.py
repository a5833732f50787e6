"""One error tree: every exception the harness defines derives from HarnessError and is listed
in the tree of harness/errors.py's docstring (the embedded Toxiproxy server has its own)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import harness
from harness import errors
from harness.errors import HarnessError

OWN_TREE = ("harness.toxiproxy_server",)


def _defined_exceptions() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(harness.__path__, "harness."):
        if info.name.startswith(OWN_TREE) or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found += [
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, BaseException) and obj.__module__ == info.name
        ]
    return found


def test_every_harness_exception_is_a_harness_error_listed_in_the_tree() -> None:
    defined = _defined_exceptions()
    assert len(defined) >= 20, [e.__name__ for e in defined]
    outside = [f"{e.__module__}.{e.__name__}" for e in defined if not issubclass(e, HarnessError)]
    assert outside == []
    doc = errors.__doc__ or ""
    unlisted = [e.__name__ for e in defined if e.__name__ not in doc]
    assert unlisted == []
