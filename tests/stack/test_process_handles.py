"""A stack object trusts its own process handle only while stack.json still names that process:
another process (`harness run` rebuilding the slot) may have started the component again."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from harness.stack.process import start_process
from harness.stack.stack import LocalStack, StackState


def test_a_handle_on_a_process_the_record_no_longer_names_is_not_used(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path / "run", [])
    stack.run_dir.mkdir(parents=True)
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    ours, record = start_process("prometheus", sleeper, tmp_path / "a.log", cwd=tmp_path)
    theirs, again = start_process("prometheus", sleeper, tmp_path / "b.log", cwd=tmp_path)
    try:
        state = StackState(run_dir=str(stack.run_dir), profile={}, host="127.0.0.1", ports={})
        state.processes["prometheus"] = asdict(record)
        stack._write_state(state)
        stack._popens["prometheus"] = ours
        assert stack._own_popen("prometheus") is ours
        state.processes["prometheus"] = asdict(again)  # restarted by another process
        stack._write_state(state)
        assert stack._own_popen("prometheus") is None
        assert stack.record("prometheus").pid == theirs.pid
    finally:
        for popen in (ours, theirs):
            popen.kill()
            popen.wait(5)
