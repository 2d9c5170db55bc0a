"""Helpers for the security tests: secure apps, registered clients, tokens.

Tokens for the resource-server tests are signed with the built-in issuer's own key (read
from the test database, as the service reads it), so each negative case changes exactly one
thing — a claim, the header, the key — against an otherwise valid token.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from service.auth import clients
from service.auth.keys import SigningKeys
from service.db.engine import Database
from tests.conftest import BASE

ISSUER = BASE.removesuffix("/fhir") + "/auth"
TOKEN_URL = f"{ISSUER}/token"
AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]


async def secure_client(app_factory: AppFactory, **overrides: Any) -> httpx.AsyncClient:
    return await app_factory(insecure_no_auth=False, **overrides)


async def register(
    database_url: str,
    scopes: str,
    *,
    jwks: dict[str, Any] | None = None,
    jwks_url: str | None = None,
) -> tuple[str, str | None]:
    database = Database(database_url)
    try:
        return await clients.register(
            database,
            name=f"test-{uuid.uuid4().hex[:6]}",
            scopes=scopes,
            now_us=time.time_ns() // 1000,
            with_secret=jwks is None and jwks_url is None,
            jwks=jwks,
            jwks_url=jwks_url,
        )
    finally:
        await database.dispose()


async def built_in_key(database_url: str) -> Any:
    database = Database(database_url)
    try:
        return await SigningKeys(database, None).signing(time.time_ns() // 1000)
    finally:
        await database.dispose()


def claims(scope: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "test-client",
        "client_id": "test-client",
        "aud": BASE,
        "scope": scope,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


async def mint(database_url: str, scope: str, **overrides: Any) -> str:
    """A token from the built-in issuer's key, with claims overridden as given."""
    key = await built_in_key(database_url)
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims(scope, **overrides), key, ["ES256"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], header: dict[str, Any]) -> str:
    """A JWT assembled by hand (for ``alg: none`` and other forgeries)."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}."


def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, private=True, auto_kid=True)


def ec_key() -> ECKey:
    return ECKey.generate_key("P-384", private=True, auto_kid=True)


def public_jwks(*keys: Any) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}
