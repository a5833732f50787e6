"""The server as a process (`python -m harness.toxiproxy_server`), --config, --seed, /metrics."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.toxiproxy.helpers import (
    Api,
    ServerThread,
    Upstream,
    connect,
    free_port,
    round_trip,
    server_process,
)

pytestmark = pytest.mark.live


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_config_applied_at_start_and_clean_exit_on_signal(
    tmp_path: Path, echo: Upstream, signum: int
) -> None:
    up_port, down_port = free_port(), free_port()
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps(
            [
                {"name": "up", "listen": f"127.0.0.1:{up_port}", "upstream": echo.address},
                {
                    "name": "down",
                    "listen": f"127.0.0.1:{down_port}",
                    "upstream": echo.address,
                    "enabled": False,
                },
            ]
        )
    )
    with server_process("--host", "127.0.0.1", "--config", str(config), "--seed", "7") as (
        proc,
        api,
    ):
        proxies = api.get("/proxies").json()
        assert proxies["up"]["enabled"] is True and proxies["down"]["enabled"] is False
        client = connect(up_port)
        assert round_trip(client) < 0.05
        proc.send_signal(signum)
        assert proc.wait(10) == 0
        stderr = proc.stderr.read()  # type: ignore[union-attr]
    assert "event=api_listening" in stderr and "event=config_populated" in stderr
    assert client.recv(1) == b""  # live connections were closed
    client.close()
    for port in (up_port, api.url.rsplit(":", 1)[1]):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", int(port)), timeout=2)


def test_unreadable_config_is_logged_not_fatal(tmp_path: Path) -> None:
    config = tmp_path / "broken.json"
    config.write_text('{"not": "an array"}')
    with server_process("--config", str(config)) as (proc, api):
        assert api.get("/proxies").json() == {}
        proc.terminate()
        assert proc.wait(10) == 0
        stderr = proc.stderr.read()  # type: ignore[union-attr]
    assert "event=config_populate_failed" in stderr and "level=error" in stderr


def test_proxy_metrics_count_bytes_when_connections_close(echo: Upstream) -> None:
    with ServerThread(proxy_metrics=True) as server:
        api = Api(server.url)
        port = api.create("m", echo.address)
        with connect(port) as sock:
            round_trip(sock, b"x" * 100)
        time.sleep(0.2)
        response = api.get("/metrics")
    assert response.status_code == 200
    text = response.text
    labels = f'listener="127.0.0.1:{port}",proxy="m",upstream="{echo.address}"'
    for direction in ("upstream", "downstream"):
        for metric in ("received", "sent"):
            line = f'toxiproxy_proxy_{metric}_bytes_total{{direction="{direction}",{labels}}} 100.0'
            assert line in text, text


def _toxicity_pattern(seed: int, echo: Upstream, connections: int = 10) -> list[bool]:
    with ServerThread(seed=seed) as server:
        api = Api(server.url)
        port = api.create("s", echo.address)
        api.toxic("s", "latency", toxicity=0.5, attributes={"latency": 40})
        pattern = []
        for _ in range(connections):
            with connect(port) as sock:
                pattern.append(round_trip(sock) >= 0.030)
        return pattern


def test_seed_makes_toxicity_rolls_reproducible(echo: Upstream) -> None:
    first = _toxicity_pattern(42, echo)
    assert _toxicity_pattern(42, echo) == first
    assert 0 < sum(first) < len(first)
    others = [_toxicity_pattern(seed, echo) for seed in (1, 2)]
    assert any(other != first for other in others)
