"""Who may call what: named bearer tokens with a role, compared in constant time.

Roles: `admin` and `operator` may mutate (start, cancel, stop, edit schedules); `read` may only
read. No or an unknown token → 401; a read token on a mutating call → 403. Reads are open
without a token only to loopback clients, and only when the settings say so. The web UI's
pages (plain GET navigations, which cannot carry a bearer header) may present the token in
the `harness_token` cookie; a mutating call never accepts the cookie, so a forged cross-site
request carries no authority.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog
from fastapi import HTTPException, Request
from pydantic import Field

from harness.config import Strict
from harness.yamlfile import FileProblems, Problem, load_model

log = structlog.get_logger("service.auth")

Role = Literal["admin", "operator", "read"]
MUTATING_ROLES = ("admin", "operator")
COOKIE = "harness_token"


class Token(Strict):
    name: str = Field(min_length=1)
    secret: str = Field(min_length=8)
    role: Role


class TokensFile(Strict):
    """`tokens: [{name, secret, role}]` in YAML or JSON (JSON is YAML)."""

    tokens: list[Token]


@dataclass(frozen=True)
class Principal:
    """The caller: a token's name and role, or `anonymous` on an open loopback read."""

    name: str
    role: Role

    @property
    def may_mutate(self) -> bool:
        return self.role in MUTATING_ROLES


def parse_env_tokens(text: str, source: str = "HARNESS_TOKENS") -> list[Token]:
    """`name:secret:role` entries separated by commas or newlines."""
    tokens, problems = [], []
    for i, entry in enumerate(e.strip() for e in text.replace("\n", ",").split(",")):
        if not entry:
            continue
        parts = entry.split(":")
        role = parts[-1] if len(parts) >= 3 else ""
        if len(parts) < 3 or role not in ("admin", "operator", "read") or len(parts[1]) < 8:
            problems.append(
                Problem(source, None, f"[{i}]", "expected name:secret:role, a secret of 8+ "
                        "characters and a role of admin, operator or read")
            )  # fmt: skip
            continue
        tokens.append(Token(name=parts[0], secret=":".join(parts[1:-1]), role=role))  # type: ignore[arg-type]
    if problems:
        raise FileProblems(problems)
    return tokens


def load_tokens(path: Path | None, env: str = "") -> list[Token]:
    """Tokens of the file and the environment; a name defined twice is an error."""
    tokens = list(load_model(TokensFile, path).tokens) if path else []
    tokens += parse_env_tokens(env) if env.strip() else []
    names = [t.name for t in tokens]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        where = str(path) if path else "HARNESS_TOKENS"
        raise FileProblems([Problem(where, None, "tokens", f"defined twice: {', '.join(twice)}")])
    return tokens


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Auth:
    """The service's gate; `reader` and `mutator` are FastAPI dependencies."""

    def __init__(self, tokens: list[Token], open_reads_on_loopback: bool = False):
        self.tokens = tokens
        self.open_reads_on_loopback = open_reads_on_loopback

    def _match(self, presented: str) -> Token | None:
        found = None
        for token in self.tokens:  # every token compared: the time does not tell which matched
            if hmac.compare_digest(token.secret.encode(), presented.encode()):
                found = token
        return found

    def identify(self, request: Request, *, allow_cookie: bool) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            presented = request.cookies.get(COOKIE, "") if allow_cookie else ""
        token = self._match(presented.strip()) if presented.strip() else None
        return Principal(token.name, token.role) if token else None

    async def reader(self, request: Request) -> Principal:
        principal = self.identify(request, allow_cookie=True)
        if principal is not None:
            return principal
        if self.open_reads_on_loopback and _loopback(request):
            return Principal("anonymous", "read")
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )

    async def mutator(self, request: Request) -> Principal:
        principal = self.identify(request, allow_cookie=False)
        if principal is None:
            log.warning("unauthenticated_mutation", path=request.url.path)
            raise HTTPException(
                401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        if not principal.may_mutate:
            log.warning("forbidden_mutation", path=request.url.path, token=principal.name)
            raise HTTPException(403, f"token {principal.name!r} is read-only")
        return principal
