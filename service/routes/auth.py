"""The built-in authorization server's endpoints and the SMART configuration.

* ``POST /auth/token`` — client_credentials (private_key_jwt, client_secret_basic or _post);
* ``POST /auth/introspect`` — token introspection (RFC 7662), for registered clients;
* ``GET /auth/jwks`` — the keys access tokens are signed with;
* ``GET /fhir/.well-known/smart-configuration`` — SMART App Launch 2 discovery
  (https://hl7.org/fhir/smart-app-launch/conformance.html), public like ``metadata``: it
  lists only what is served (no authorization endpoint, so no launch, no PKCE, no response
  types).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from service.auth.client_auth import ASSERTION_ALGORITHMS, METHODS
from service.auth.oauth_errors import OAuthError, invalid_request
from service.auth.server import GRANT_TYPES
from service.auth.setup import AuthServices
from service.settings import Settings

router = APIRouter(tags=["authorization"])
smart = APIRouter(tags=["system"])
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FORM_BYTES = 64 * 1024

# What the built-in server grants to client_credentials clients (system/ scopes, v1 and v2).
SCOPES_SUPPORTED = [
    "system/*.cruds",
    "system/*.rs",
    "system/*.cud",
    "system/*.read",
    "system/*.write",
    "system/*.*",
]

Endpoint = Callable[[Mapping[str, str], str | None], Awaitable[dict[str, Any]]]


def _auth(request: Request) -> AuthServices:
    services: AuthServices = request.app.state.auth
    return services


async def _form(request: Request) -> dict[str, str]:
    """The form-encoded request body; each parameter at most once (RFC 6749 section 3.2)."""
    body = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded" or len(body) > _MAX_FORM_BYTES:
        raise invalid_request("Send a form-encoded request")
    pairs = parse_qsl(body.decode(), keep_blank_values=True)  # UTF-8: service.input_screen
    repeated = [name for name, count in Counter(name for name, _ in pairs).items() if count > 1]
    if repeated:
        raise invalid_request("Parameters sent more than once: " + ", ".join(repeated))
    return dict(pairs)


async def _answer(request: Request, endpoint: Endpoint) -> JSONResponse:
    try:
        answer = await endpoint(await _form(request), request.headers.get("authorization"))
    except OAuthError as error:
        headers = dict(_NO_STORE)
        if error.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="keyworker"'
        return JSONResponse(error.body(), error.status, headers)
    return JSONResponse(answer, headers=_NO_STORE)


@router.post("/auth/token", operation_id="token", summary="OAuth 2.0 token endpoint")
async def token(request: Request) -> JSONResponse:
    return await _answer(request, _auth(request).server.token)


@router.post(
    "/auth/introspect",
    operation_id="introspect",
    summary="OAuth 2.0 token introspection (RFC 7662)",
)
async def introspect(request: Request) -> JSONResponse:
    return await _answer(request, _auth(request).server.introspect)


@router.get("/auth/jwks", operation_id="jwks", summary="The token signing keys (JWKS)")
async def jwks(request: Request) -> JSONResponse:
    keys = await _auth(request).keys.public_set(time.time_ns() // 1000)
    return JSONResponse(keys, headers={"Cache-Control": "max-age=60"})


def smart_configuration(settings: Settings) -> dict[str, Any]:
    issuer = settings.auth_issuer
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks",
        "token_endpoint": f"{issuer}/token",
        "introspection_endpoint": f"{issuer}/introspect",
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": list(METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint_auth_methods_supported": list(METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": [
            "client-confidential-asymmetric",
            "client-confidential-symmetric",
            "permission-v1",
            "permission-v2",
        ],
    }


@smart.get(
    "/.well-known/smart-configuration",
    operation_id="smart_configuration",
    summary="SMART on FHIR configuration",
)
async def smart_config(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    return JSONResponse(smart_configuration(settings))
