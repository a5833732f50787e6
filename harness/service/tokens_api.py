"""The tokens and their policies, admin only: read the effective permissions and policy of
every token (never a secret), and reload the tokens file without a restart.

A reload reads the file (and HARNESS_TOKENS as at start) and validates all of it first: a bad
file is a 422 naming file, line and field, and nothing changes; a good one replaces every
token at once (a secret checked before the reload is not cached for after it). A file that
would leave no admin token is refused the same way. Both outcomes are audited, with what
changed by token name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request

from harness.service.api import audited
from harness.service.auth import Credential, Principal
from harness.service.policy import capabilities
from harness.service.service import NoTokensFile, Service
from harness.yamlfile import FileProblems


def view(token: Credential) -> dict[str, Any]:
    """A token as the API shows it: what its role and policy let it do; never a secret."""
    return {
        "name": token.name,
        "role": token.role,
        "source": token.source,
        "may": capabilities(token.role, token.policy),
        "policy": token.policy.model_dump(mode="json"),
    }


def build(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api/tokens", tags=["admin"])
    admin = Depends(service.auth.admin)
    reloading = anyio.Lock()

    @router.get("")
    async def tokens(who: Principal = admin) -> list[dict[str, Any]]:
        """Every token the service knows: name, role, source (`file`, `environment`), what
        it may do (`may`) and its policy with every default spelled out; never a secret."""
        return [view(t) for t in service.auth.tokens]

    @router.post("/reload")
    async def reload(request: Request, who: Principal = admin) -> dict[str, Any]:
        """Read the tokens file again and take it at once, only if all of it is valid (422
        naming file, line and field otherwise, nothing changed; 409 without a tokens file).
        Audited either way; the answer lists what changed and every token now known."""
        path = str(service.settings.tokens_file or "")

        async def refuse(status: int, message: str, **extra: Any) -> HTTPException:
            entry = await audited(service, request, who, "tokens.reload", path, detail=message)
            await anyio.to_thread.run_sync(
                service.store.audit, dataclasses.replace(entry, outcome="denied")
            )
            return HTTPException(status, {"rule": "tokens_file", "message": message, **extra})

        async with reloading:
            try:
                changes = await anyio.to_thread.run_sync(service.reload_tokens)
            except NoTokensFile as exc:
                raise await refuse(409, str(exc)) from None
            except FileProblems as exc:
                problems = [{"file": p.file, "line": p.line, "field": p.field,
                             "message": p.message} for p in exc.problems]  # fmt: skip
                message = "the tokens file was not reloaded: " + "; ".join(
                    str(p) for p in exc.problems[:5]
                )
                raise await refuse(422, message, problems=problems) from None
            summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in changes.items() if v)
            entry = await audited(service, request, who, "tokens.reload", path,
                                  detail=summary or "no change")  # fmt: skip
            await anyio.to_thread.run_sync(service.store.audit, entry)
        return {**changes, "tokens": [view(t) for t in service.auth.tokens]}

    return router
