"""Who may call the FHIR endpoints.

Secure by default: without a validated bearer token nothing under ``/fhir`` (but the
CapabilityStatement) is served. Token validation lives with the authorization work; until an
issuer is configured every request is refused with 401. The operator's explicit
``--insecure-no-auth`` development mode switches checking off and is announced in the log at
start and in a header on every response.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from starlette.requests import Request

from service.errors import Unauthorized
from service.settings import Settings

INSECURE_HEADER = "X-Keyworker-Insecure"


def access_dependency(settings: Settings) -> Any:
    async def require_token(request: Request) -> None:
        if settings.insecure_no_auth:
            return
        if not request.headers.get("authorization", "").lower().startswith("bearer "):
            raise Unauthorized(
                "A bearer access token is required",
                headers={"WWW-Authenticate": 'Bearer realm="keyworker", error="invalid_token"'},
            )
        raise Unauthorized(
            "The access token cannot be validated: no trusted issuer is configured",
            headers={"WWW-Authenticate": 'Bearer realm="keyworker", error="invalid_token"'},
        )

    return Depends(require_token)
