"""`harness serve` refuses a broken config with file, line and field (before binding); the
service's commands print user text and the service's answers verbatim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

from harness.service.auth import Auth, load_tokens
from harness.service.datalock import DataDirLock
from tests import inprocess
from tests.service.fakes import TOKENS, service_files


def serve(*args: str, env: dict[str, str] | None = None) -> inprocess.Ran:
    """`harness serve ARGS` in-process; only the data-directory lock, which must hold against
    another process, is proven with a real `python -m harness serve`."""
    return inprocess.harness("serve", *args, env=env)


def test_a_broken_config_file_is_named_with_its_line_and_field(tmp_path: Path) -> None:
    config = service_files(tmp_path)
    text = config.read_text() + "colour: red\n"
    config.write_text(text)
    result = serve("--config", str(config), "--data-dir", str(tmp_path / "data"), "--port", "0")
    assert result.returncode == 2, result.stdout + result.stderr
    line = len(text.splitlines())
    assert f"service.yaml:{line} colour: unknown key" in " ".join(result.stderr.split())


def test_a_broken_target_file_in_the_config_is_named(tmp_path: Path) -> None:
    config = service_files(tmp_path)
    (tmp_path / "staging-a.yaml").write_text("name: x\nkind: external\n")
    result = serve("--config", str(config), "--data-dir", str(tmp_path / "data"), "--port", "0")
    assert result.returncode == 2
    assert "staging-a.yaml" in result.stderr and "nats_url" in result.stderr


def test_check_validates_without_starting_anything(tmp_path: Path) -> None:
    config = service_files(tmp_path)
    data = tmp_path / "data"
    env = {**os.environ, "HARNESS_TOKENS": TOKENS}
    result = serve("--check", "--config", str(config), "--data-dir", str(data), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: 3 token(s)" in result.stdout and "1 target file(s)" in result.stdout
    assert not data.exists(), "--check creates nothing"
    config.write_text(config.read_text() + "colour: red\n")
    result = serve("--check", "--config", str(config), env=env)
    assert result.returncode == 2 and "colour: unknown key" in result.stderr


def test_schedules_naming_unknown_scenarios_or_targets_are_refused_at_start(
    tmp_path: Path,
) -> None:
    schedules = (
        "schedules:\n"
        "  - name: a\n    cron: '0 3 * * *'\n    scenarios: [NOPE-1]\n    target: staging-a\n"
        "  - name: b\n    cron: '0 3 * * *'\n    scenarios: [QUICK-001]\n    target: nowhere\n"
    )
    config = service_files(tmp_path, schedules=schedules)
    for args in (("--check",), ("--port", "0", "--data-dir", str(tmp_path / "data"))):
        result = serve(*args, "--config", str(config))
        err = " ".join(result.stderr.split())
        assert result.returncode == 2, result.stdout + result.stderr
        assert "schedules.yaml:4 schedules[0].scenarios: unknown scenario" in err, err
        assert "schedules.yaml:9 schedules[1].target: unknown target 'nowhere'" in err, err


def test_the_config_variable_may_be_spelt_as_the_flag_suggests(tmp_path: Path) -> None:
    config = service_files(tmp_path, targets=("staging-a", "staging-b"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_SERVE_")}
    result = serve("--check", env={**env, "HARNESS_SERVE_CONFIG": str(config)})
    assert result.returncode == 0 and "2 target file(s)" in result.stdout, result.stderr
    result = serve("--check", env={**env, "HARNESS_SERVE_CONFG": str(config)})
    assert "HARNESS_SERVE_CONFG is not a setting" in " ".join(result.stderr.split())


def test_bad_settings_are_one_line_naming_the_flag_or_variable(tmp_path: Path) -> None:
    result = serve("--check", "--port", "70000")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --port: ") and "65535" in line and "70000" in line
    assert "pydantic" not in result.stderr
    result = serve("--check", env={**os.environ, "HARNESS_SERVE_SCHEDULER_TICK": "soon"})
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: HARNESS_SERVE_SCHEDULER_TICK: ") and "'soon'" in line


def test_a_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    config = service_files(tmp_path)
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    for check in ((), ("--check",)):
        result = serve(*check, "--config", str(config), "--data-dir", str(file), "--port", "0")
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert f"{file} --data-dir: is a file" in " ".join(result.stderr.split())


@pytest.mark.parametrize("content", [b"\xff\xfe\x00t\x00o\x00k", b"tokens:\n  - \x00\x01\x02"])
def test_binary_tokens_and_config_files_are_named(tmp_path: Path, content: bytes) -> None:
    config = service_files(tmp_path)
    tokens = tmp_path / "tokens.bin"
    tokens.write_bytes(content)
    result = serve("--check", "--config", str(config), "--tokens-file", str(tokens))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tokens}" in result.stderr and "tokens file" in result.stderr
    config.write_bytes(b"targets: [\xe9t\xe9]\n")
    result = serve("--check", "--config", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "service.yaml:1: config file: not UTF-8 text" in " ".join(result.stderr.split())


def test_a_second_service_on_the_same_data_dir_refuses_to_start(tmp_path: Path) -> None:
    config = service_files(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    lock = DataDirLock(data)
    lock.acquire()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "harness", "serve",
             "--config", str(config), "--data-dir", str(data), "--port", "0"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        lock.release()
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"data directory {data} is in use by another harness serve (pid {os.getpid()}" in (
        " ".join(result.stderr.split())
    )


def test_hash_token_prints_a_hash_the_tokens_file_accepts(tmp_path: Path) -> None:
    result = inprocess.harness("hash-token", "--generate")
    assert result.returncode == 0, result.stderr
    secret_line, digest = result.stdout.strip().splitlines()
    secret = secret_line.removeprefix("secret: ")
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"tokens:\n  - {{name: ci, secret_hash: '{digest}', role: operator}}\n")
    auth = Auth(load_tokens(tokens))
    assert anyio.run(auth.match, secret).name == "ci"
    weak = inprocess.harness("hash-token", input="short\n")
    assert weak.returncode == 2 and "too short" in weak.stderr


# --- output: the service's answers and user text printed verbatim --------------------------

MARKUP = "[bold red]INC-42[/] :fire: [link=x]y[/link]"


class Answers:
    """A stand-in service answering each path with a fixed status and JSON body."""

    def __init__(self, answers: dict[str, tuple[int, Any]]):
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                status, body = answers[self.path]
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_the_service_commands_print_user_text_verbatim() -> None:
    report = {
        "target": f"staging {MARKUP}",
        "clean": False,
        "seconds": 0.1,
        "healed": [{"key": "run-[x]-f0"}],
        "errors": [f"toxiproxy said {MARKUP}"],
    }
    stub = Answers({
        "/api/lever": (200, {"engaged": True, "by": "[i]root[/i]", "reason": MARKUP}),
        "/api/lever/engage": (200, {"lever": {}, "stop_all": {
            "cancelled": ["run-:fire:"], "targets": [report], "clean": False}}),
        "/api/lever/release": (403, {"detail": {"rule": "role", "message": MARKUP}}),
        "/api/stop-all": (200, {"cancelled": [], "targets": [report], "clean": False}),
    })  # fmt: skip
    try:
        status = harness("lever", "status", "--url", stub.url, "--token", "t")
        assert status.returncode == 1
        assert status.stdout.strip() == f"ENGAGED by [i]root[/i]: {MARKUP}"
        engage = harness("lever", "engage", "--reason", "why", "--url", stub.url, "--token", "t")
        assert engage.returncode == 1, engage.stderr
        lines = engage.stdout.splitlines()
        assert lines[0] == "safety lever engaged; cancelled: run-:fire:"
        assert lines[1] == (f"staging {MARKUP}: NOT proven clean (run-[x]-f0) in 0.1s — "
                            f"toxiproxy said {MARKUP}")  # fmt: skip
        release = harness("lever", "release", "--reason", "ok", "--url", stub.url, "--token", "t")
        assert release.returncode == 1
        assert release.stderr.startswith("error: the service refused: 403 ")
        assert json.dumps(MARKUP)[1:-1] in release.stderr
        stop = harness("stop-all", "--url", stub.url, "--token", "t")
        assert stop.returncode == 1 and f"staging {MARKUP}: NOT proven clean" in stop.stdout
    finally:
        stub.close()


def test_serve_warnings_and_errors_are_verbatim(tmp_path: Path) -> None:
    config = service_files(tmp_path)
    env = {**os.environ, "HARNESS_SERVE_[B]X[/B]:FIRE:": "1"}
    missing = tmp_path / "[red]:fire:" / "tokens.yaml"
    result = serve("--check", "--config", str(config), "--tokens-file", str(missing), env=env)
    assert result.returncode == 2
    assert "warning: HARNESS_SERVE_[B]X[/B]:FIRE: is not a setting" in result.stderr
    assert f"error: {missing}" in result.stderr, result.stderr
