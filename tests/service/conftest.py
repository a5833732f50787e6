"""Service tests: the schedules stand-in (until the real module lands), settings and a
wire-less run function for API tests."""

from __future__ import annotations

import importlib.util
import sys

if importlib.util.find_spec("harness.service.schedules") is None:  # pragma: no cover
    from tests.service import schedules_standin

    sys.modules["harness.service.schedules"] = schedules_standin
