"""Tokens: from a file and the environment, malformed entries named, duplicates refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.service.auth import Auth, load_tokens, parse_env_tokens
from harness.yamlfile import FileProblems


def test_env_tokens_parse_name_secret_role() -> None:
    tokens = parse_env_tokens("ci:s3cret-value:operator, ro:another-secret:read")
    assert [(t.name, t.role) for t in tokens] == [("ci", "operator"), ("ro", "read")]
    assert tokens[0].secret == "s3cret-value"


@pytest.mark.parametrize("text", ["ci:short:admin", "ci:long-enough:root", "just-a-secret"])
def test_malformed_env_tokens_are_refused(text: str) -> None:
    with pytest.raises(FileProblems, match="HARNESS_TOKENS"):
        parse_env_tokens(text)


def test_file_tokens_with_line_numbers_and_duplicates(tmp_path: Path) -> None:
    good = tmp_path / "tokens.yaml"
    good.write_text("tokens:\n  - {name: alice, secret: alice-secret-1, role: admin}\n")
    assert [t.name for t in load_tokens(good, "bob:bob-secret-22:read")] == ["alice", "bob"]
    with pytest.raises(FileProblems, match="defined twice: alice"):
        load_tokens(good, "alice:other-secret-1:read")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tokens:\n  - name: x\n    secret: long-enough-1\n    role: superuser\n")
    with pytest.raises(FileProblems, match=r"bad.yaml:4 tokens\[0\].role"):
        load_tokens(bad)


def test_the_match_is_by_secret_not_by_prefix() -> None:
    auth = Auth(parse_env_tokens("a:secret-aaaa:admin"))
    assert auth._match("secret-aaaa") is not None
    assert auth._match("secret-aaa") is None and auth._match("secret-aaaab") is None
