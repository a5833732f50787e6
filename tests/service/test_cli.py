"""`harness serve` refuses a broken config with file, line and field (before binding)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.service.fakes import service_files


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "serve", *args], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


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
