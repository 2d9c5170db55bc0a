"""The built-in authorization server's endpoints and the SMART configuration.

* ``POST /auth/token`` — client_credentials (private_key_jwt or client_secret_basic);
* ``GET /auth/jwks`` — the keys access tokens are signed with;
* ``GET /fhir/.well-known/smart-configuration`` — SMART App Launch 2 discovery
  (https://hl7.org/fhir/smart-app-launch/conformance.html), public like ``metadata``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from service.auth.server import ASSERTION_ALGORITHMS, OAuthError
from service.auth.setup import AuthServices
from service.settings import Settings

router = APIRouter(tags=["authorization"])
smart = APIRouter(tags=["system"])
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FORM_BYTES = 64 * 1024

SCOPES_SUPPORTED = [
    "system/*.rs",
    "system/*.cruds",
    "system/*.read",
    "system/*.write",
    "user/*.rs",
    "user/*.cruds",
    "patient/*.rs",
    "patient/*.cruds",
    "system/AuditEvent.rs",
    "system/Provenance.rs",
]


def _auth(request: Request) -> AuthServices:
    services: AuthServices = request.app.state.auth
    return services


@router.post("/auth/token", operation_id="token", summary="OAuth 2.0 token endpoint")
async def token(request: Request) -> JSONResponse:
    body = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if media != "application/x-www-form-urlencoded" or len(body) > _MAX_FORM_BYTES:
            raise OAuthError(400, "invalid_request", "Send a form-encoded token request")
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        issued = await _auth(request).server.token(form, request.headers.get("authorization"))
    except OAuthError as error:
        headers = dict(_NO_STORE)
        if error.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="keyworker"'
        return JSONResponse(error.body(), error.status, headers)
    return JSONResponse(issued, headers=_NO_STORE)


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
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["token"],
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
