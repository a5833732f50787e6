"""Polls one NATS server's monitoring endpoints in a background thread and keeps the latest
answers, so a scrape never waits on a slow or stopped server (a SIGSTOPped node would
otherwise hold every scrape until it timed out)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from harness.exporter.families import JSZ_QUERY, Snapshot

PATHS = {
    "varz": "/varz",
    "routez": "/routez",
    "jsz": f"/jsz?{JSZ_QUERY}",
    "healthz": "/healthz",
}


class Poller:
    """The latest answers of one server, refreshed every `interval` seconds."""

    def __init__(self, server_id: str, url: str, interval: float = 1.0):
        self.server_id = server_id
        self.url = url.rstrip("/")
        self.interval = interval
        self._lock = threading.Lock()
        self._snapshot = Snapshot(server_id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poll-{server_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def poll_once(self, client: httpx.Client) -> Snapshot:
        """Ask every endpoint once; an endpoint that does not answer is None, with the reason."""
        snapshot = Snapshot(self.server_id)
        for endpoint, path in PATHS.items():
            body: Any = None
            try:
                response = client.get(f"{self.url}{path}")
                body = response.json()
                # /healthz answers 503 with a JSON status when unhealthy: still an answer.
                if endpoint != "healthz":
                    response.raise_for_status()
            except (httpx.HTTPError, ValueError) as exc:
                snapshot.errors[endpoint] = f"{type(exc).__name__}: {exc}"
                body = None
            setattr(snapshot, endpoint, body if isinstance(body, dict) else None)
        with self._lock:
            self._snapshot = snapshot
        return snapshot

    def _run(self) -> None:
        # Each request may take at most the interval: a stopped server costs one interval.
        with httpx.Client(timeout=max(0.2, self.interval)) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                self.poll_once(client)
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
