"""A Prometheus that is down, or answers 503, is reported promptly: the adapter retries once
after a short pause (not the client's default three retries with exponential backoff, ~6 s a
query), and its error names the URL, the query, what went wrong and what it tried."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import pytest

from harness.checks.scrape import ScrapeCheck
from harness.errors import PrometheusError
from harness.prometheus import PrometheusAPI
from harness.stack.ports import free_port

GENEROUS_S = 2.0
"""What a down Prometheus may cost a query at most (it takes about 0.3 s: two refused
connections and the pause between them); generous for a loaded 2-core machine."""


def failing(api: PrometheusAPI) -> tuple[PrometheusError, float]:
    began = time.monotonic()
    with pytest.raises(PrometheusError) as raised:
        anyio.run(api.instant, "up")
    return raised.value, time.monotonic() - began


def test_nothing_listening_is_reported_within_two_seconds_naming_url_and_attempts() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    error, took = failing(PrometheusAPI(url))
    print(f"down: {took:.2f}s: {error}")
    refused = "ConnectionRefusedError: [Errno 111] Connection refused"
    said = str(error)
    prefix = f"{url}: query 'up': {refused} (tried 2 times in "
    assert said.startswith(prefix) and re.fullmatch(r"\d+\.\ds\)", said[len(prefix) :]), said
    assert took < GENEROUS_S


def test_a_check_against_a_down_prometheus_is_an_error_promptly() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    class Since:
        contract = None
        target = None

        def started(self) -> float:
            return time.time() - 10

    began = time.monotonic()
    checked = anyio.run(ScrapeCheck("router", PrometheusAPI(url)).verdict, Since())
    took = time.monotonic() - began
    print(f"check: {took:.2f}s: {checked.summary}")
    assert checked.status == "error"
    assert checked.summary.startswith(f"could not consult the target: {url}: query 'up{{job=")
    assert "Connection refused (tried 2 times in" in checked.summary
    assert took < GENEROUS_S


class Unavailable(BaseHTTPRequestHandler):
    """Answers every request 503, counting them."""

    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = b"Service Unavailable"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def unavailable() -> Iterator[str]:
    Unavailable.hits = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_503_is_retried_once_after_a_short_pause(unavailable: str) -> None:
    error, took = failing(PrometheusAPI(unavailable))
    print(f"503: {took:.2f}s: {error}")
    assert Unavailable.hits == 2
    assert str(error).startswith(f"{unavailable}: query 'up': HTTP Status Code 503")
    assert re.search(r"\(tried 2 times in \d+\.\ds\)$", str(error))
    assert 0.2 <= took < GENEROUS_S  # the pause before the retry, and no more
