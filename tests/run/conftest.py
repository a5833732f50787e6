"""Fixtures for live fault tests: the shared stack, checked usable before and clean after."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from harness.config import Target
from harness.stack.stack import LocalStack
from tests.faults.live import repair, stack_problems, wait_usable


@pytest.fixture
def clean_stack(local_stack: LocalStack, target: Target) -> Iterator[LocalStack]:
    """The session stack, usable before the test; after it, anything left behind (a toxic, a
    disabled proxy, an armed router fault, a journal entry, a stopped component) is repaired
    so later tests can go on, and fails this test."""
    anyio.run(wait_usable, local_stack, target)
    yield local_stack
    problems = anyio.run(stack_problems, local_stack, target)
    if problems:
        anyio.run(repair, local_stack, target)
    anyio.run(wait_usable, local_stack, target)
    assert not problems, f"the test left the shared stack dirty: {problems}"
