"""Who may call what: named bearer tokens with a role and a policy, kept as hashes.

Tokens come from a file (`tokens: [{name, secret | secret_hash, role, policy}]`) and the
environment (`name:secret:role`, where the secret may be a hash form). A secret must be strong
(credentials.weakness); placeholders and the shipped examples are refused at start. Each
presented secret is checked against every token (constant-time compares; a KDF hash off the
event loop) and the answer cached by a keyed fingerprint, so a poller costs one dict lookup.

Roles and policies: harness.service.policy. The gate (harness.service.gate) identifies the
caller before any work; the dependencies here read what it found and check the role of the
call. The web UI's pages (plain GET navigations, which cannot carry a bearer header) may present
the token in the `harness_token` cookie; a mutating call never accepts the cookie, so a forged
cross-site request carries no authority.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import structlog
from fastapi import HTTPException, Request
from pydantic import Field, ValidationError, model_validator

from harness.config import Strict
from harness.service import credentials
from harness.service.policy import (
    LEVER_ROLES,
    MUTATING_ROLES,
    OPEN,
    ROLES,
    STOPPING_ROLES,
    Denied,
    Policy,
    Role,
    require_role,
)
from harness.service.settings import load_text_model
from harness.yamlfile import FileProblems, Problem

log = structlog.get_logger("service.auth")

COOKIE = "harness_token"
CACHE_SIZE = 4096

__all__ = [
    "MUTATING_ROLES",
    "Auth",
    "Principal",
    "Token",
    "load_token_sources",
    "load_tokens",
    "parse_env_tokens",
]


class Token(Strict):
    """One named token: a strong `secret`, or its `secret_hash` (`harness hash-token`)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    secret: str | None = Field(None, min_length=1, max_length=1000)
    secret_hash: str | None = Field(None, max_length=1000)
    role: Role
    policy: Policy = OPEN

    @model_validator(mode="after")
    def _one_secret(self) -> Token:
        if (self.secret is None) == (self.secret_hash is None):
            raise ValueError("give either secret or secret_hash")
        if self.secret is not None and credentials.is_hash_form(self.secret):
            self.secret_hash, self.secret = self.secret, None
        if self.secret_hash is not None:
            credentials.parse_hash(self.secret_hash)
        elif why := credentials.weakness(self.secret or ""):
            raise ValueError(f"secret {why}")
        return self


class TokensFile(Strict):
    """`tokens: [{name, secret | secret_hash, role, policy}]` in YAML or JSON (JSON is YAML)."""

    tokens: list[Token] = Field(max_length=1000)


@dataclass(frozen=True)
class Credential:
    """A loaded token: its name, role, policy, verifier and where it came from (`file` or
    `environment`); never the secret."""

    name: str
    role: str
    policy: Policy
    verifier: credentials.Verifier = field(repr=False)
    source: str = "file"

    @classmethod
    def of(cls, token: Token, source: str = "file") -> Credential:
        verifier = (
            credentials.parse_hash(token.secret_hash)
            if token.secret_hash
            else credentials.keyed(token.secret or "")
        )
        return cls(token.name, token.role, token.policy, verifier, source)


@dataclass(frozen=True)
class Principal:
    """The caller: a token's name, role and policy, or `anonymous` on an open loopback read."""

    name: str
    role: str
    policy: Policy = field(default_factory=lambda: OPEN)

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
        if len(parts) < 3 or role not in ROLES:
            problems.append(
                Problem(source, None, f"[{i}]", "expected name:secret:role with a role of "
                        f"{', '.join(ROLES)}")
            )  # fmt: skip
            continue
        secret = ":".join(parts[1:-1])
        try:
            tokens.append(Token(name=parts[0], secret=secret, role=role))  # type: ignore[arg-type]
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in errors)
            problems.append(Problem(source, None, f"[{i}] ({parts[0]})", message))
    if problems:
        raise FileProblems(problems)
    return tokens


def load_token_sources(path: Path | None, env: str = "") -> list[tuple[Token, str]]:
    """Tokens of the file and the environment, each with its source (`file`,
    `environment`); a name defined twice is an error."""
    from_file = list(load_text_model(TokensFile, path, "tokens file").tokens) if path else []
    from_env = parse_env_tokens(env) if env.strip() else []
    names = [t.name for t in [*from_file, *from_env]]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        where = str(path) if path else "HARNESS_TOKENS"
        raise FileProblems([Problem(where, None, "tokens", f"defined twice: {', '.join(twice)}")])
    return [(t, "file") for t in from_file] + [(t, "environment") for t in from_env]


def load_tokens(path: Path | None, env: str = "") -> list[Token]:
    """Tokens of the file and the environment; a name defined twice is an error."""
    return [token for token, _ in load_token_sources(path, env)]


def loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_address(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else ""


def presented_secret(request: Request, *, allow_cookie: bool) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        presented = request.cookies.get(COOKIE, "") if allow_cookie else ""
    return presented.strip()[:1000]


class Auth:
    """The service's credentials and the role checks the routes depend on."""

    def __init__(
        self,
        tokens: list[Token],
        open_reads_on_loopback: bool = False,
        sources: dict[str, str] | None = None,
    ):
        self.open_reads_on_loopback = open_reads_on_loopback
        self.replace(tokens, sources)

    def replace(self, tokens: list[Token], sources: dict[str, str] | None = None) -> None:
        """Take a new set of tokens at once (a reload of the tokens file, from any thread):
        the set and its empty cache are swapped in one assignment, and a check begun against
        the old set caches into the old set's cache."""
        loaded = [Credential.of(t, (sources or {}).get(t.name, "file")) for t in tokens]
        self._current: tuple[list[Credential], OrderedDict[bytes, Credential | None]] = (
            loaded,
            OrderedDict(),
        )

    @property
    def tokens(self) -> list[Credential]:
        return self._current[0]

    @staticmethod
    def _match(presented: str, tokens: list[Credential]) -> Credential | None:
        """Every token compared, so the time does not tell which matched (the KDF-hashed
        ones only when no plain one did)."""
        found = None
        for token in tokens:
            if not token.verifier.costly and token.verifier.matches(presented):
                found = token
        if found is None:
            for token in tokens:
                if token.verifier.costly and token.verifier.matches(presented):
                    found = token
        return found

    async def match(self, presented: str) -> Credential | None:
        tokens, cache = self._current  # one set throughout, even across a reload
        key = credentials.fingerprint(presented)
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        if any(t.verifier.costly for t in tokens):
            found = await anyio.to_thread.run_sync(self._match, presented, tokens)
        else:
            found = self._match(presented, tokens)
        cache[key] = found
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
        return found

    async def identify(self, request: Request, *, allow_cookie: bool) -> Principal | None:
        presented = presented_secret(request, allow_cookie=allow_cookie)
        token = await self.match(presented) if presented else None
        return Principal(token.name, token.role, token.policy) if token else None

    # --- FastAPI dependencies: the gate has identified the caller already ------------------

    @staticmethod
    def caller(request: Request) -> Principal:
        principal = getattr(request.state, "principal", None)
        if principal is None:  # the gate answers before a route; this is a second lock
            raise HTTPException(401, "a bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        return principal

    async def reader(self, request: Request) -> Principal:
        return self.caller(request)

    async def mutator(self, request: Request) -> Principal:
        """May inject: start runs, cancel, edit schedules (admin, operator)."""
        who = self.caller(request)
        require_role(who.name, who.role, MUTATING_ROLES, "start or change runs and schedules")
        return who

    async def stopper(self, request: Request) -> Principal:
        """May stop everything (admin, operator, safety)."""
        who = self.caller(request)
        require_role(who.name, who.role, STOPPING_ROLES, "stop runs")
        return who

    async def lever(self, request: Request) -> Principal:
        """May engage the safety lever (admin, safety)."""
        who = self.caller(request)
        require_role(who.name, who.role, LEVER_ROLES, "engage the safety lever")
        return who

    async def admin(self, request: Request) -> Principal:
        who = self.caller(request)
        require_role(who.name, who.role, ("admin",), "do this (admin only)")
        return who


__all__ += ["Denied", "client_address", "loopback"]
