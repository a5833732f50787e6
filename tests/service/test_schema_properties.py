"""Property-based API tests from the service's own OpenAPI schema (schemathesis): whatever it
generates, valid or not, with a token that may mutate, the service answers without a 5xx.
Served over real HTTP by uvicorn (so the app's lifespan runs), with the wire-less runner."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from harness.service.app import create_app
from tests.service.fakes import ADMIN, FakeRunner, bearer, service_files, settings_for


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    base: Path = tmp_path_factory.mktemp("schema")
    mp = pytest.MonkeyPatch()
    mp.setenv("HARNESS_STATE_DIR", str(base / "state"))
    app = create_app(settings_for(base, service_files(base)), run_fn=FakeRunner(phase_s=0.001))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json", headers=bearer(ADMIN))
    finally:
        server.should_exit = True
        thread.join(20)
        mp.undo()


def test_no_request_makes_the_service_fail(api_schema: schemathesis.BaseSchema) -> None:
    """Every operation, positive and negative data (schemathesis' own pytest plugin is not
    used: it does not run on this pytest)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12, [o.label for o in operations]
    failures: list[str] = []
    statuses: dict[int, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)  # fmt: skip
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers=bearer(ADMIN), timeout=30)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} → {response.status_code}: "
                                f"{response.text[:300]}")  # fmt: skip

        call()
    assert not failures, "\n".join(failures)
    assert sum(statuses.values()) >= 4 * len(operations), statuses
    assert any(400 <= s < 500 for s in statuses) and any(s < 300 for s in statuses), statuses
    print(f"schemathesis: {sum(statuses.values())} calls, statuses {sorted(statuses.items())}")
