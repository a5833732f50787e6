"""Tokens: from a file and the environment, malformed entries named, duplicates refused, weak
and placeholder secrets refused, hash forms accepted and no secret kept in the clear."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from harness.paths import project_root
from harness.service.auth import Auth, load_tokens, parse_env_tokens
from harness.service.credentials import hash_secret, weakness
from harness.yamlfile import FileProblems

STRONG = "Zq3-vT8pLm2xK9wR"


def test_env_tokens_parse_name_secret_role() -> None:
    tokens = parse_env_tokens(f"ci:{STRONG}:operator, ro:{STRONG}x:read, s:{STRONG}y:safety")
    assert [(t.name, t.role) for t in tokens] == [("ci", "operator"), ("ro", "read"),
                                                  ("s", "safety")]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["ci:short:admin", f"ci:{STRONG}:root", "just-a-secret", "ci:aaaaaaaaaaaaaaaaaaaa:admin",
     "ci:PLACEHOLDER-replace-me-operator-token:operator", "ci:changeme-changeme-1234:admin"],
)  # fmt: skip
def test_weak_or_malformed_env_tokens_are_refused(text: str) -> None:
    with pytest.raises(FileProblems, match="HARNESS_TOKENS"):
        parse_env_tokens(text)


def test_file_tokens_with_line_numbers_and_duplicates(tmp_path: Path) -> None:
    good = tmp_path / "tokens.yaml"
    good.write_text(f"tokens:\n  - {{name: alice, secret: {STRONG}, role: admin}}\n")
    assert [t.name for t in load_tokens(good, f"bob:{STRONG}b:read")] == ["alice", "bob"]
    with pytest.raises(FileProblems, match="defined twice: alice"):
        load_tokens(good, f"alice:{STRONG}c:read")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"tokens:\n  - name: x\n    secret: {STRONG}\n    role: superuser\n")
    with pytest.raises(FileProblems, match=r"bad.yaml:4 tokens\[0\].role"):
        load_tokens(bad)


def test_the_shipped_example_tokens_are_refused_at_start() -> None:
    example = project_root() / "deploy" / "harness" / "tokens.example.yaml"
    with pytest.raises(FileProblems, match=r"tokens\[0\].*placeholder"):
        load_tokens(example)


def test_weakness_names_the_problem() -> None:
    assert weakness(STRONG) is None
    assert "short" in (weakness("abc-123") or "")
    assert "different characters" in (weakness("abababababababababab") or "")
    assert "placeholder" in (weakness("my-example-token-1234567") or "")


def test_the_match_is_by_secret_not_by_prefix_and_no_secret_is_kept() -> None:
    auth = Auth(parse_env_tokens(f"a:{STRONG}:admin"))
    assert auth._match(STRONG, auth.tokens) is not None
    assert auth._match(STRONG[:-1], auth.tokens) is None
    assert auth._match(STRONG + "b", auth.tokens) is None
    assert STRONG not in repr(auth.tokens) and STRONG.encode() not in auth.tokens[0].verifier.key


@pytest.mark.parametrize("kind", ["scrypt", "pbkdf2_sha256"])
def test_a_hash_form_in_the_tokens_file_is_accepted(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "tokens.yaml"
    digest = hash_secret(STRONG, kind)
    path.write_text(f"tokens:\n  - name: ci\n    secret_hash: '{digest}'\n    role: operator\n")
    auth = Auth(load_tokens(path))
    assert anyio.run(auth.match, STRONG).name == "ci"
    assert anyio.run(auth.match, STRONG + "x") is None
    path.write_text("tokens:\n  - {name: ci, secret_hash: 'scrypt$1$1$1$AA==$AA==', role: read}\n")
    with pytest.raises(FileProblems, match=r"tokens.yaml:2 tokens\[0\]: .*scrypt parameters"):
        load_tokens(path)
