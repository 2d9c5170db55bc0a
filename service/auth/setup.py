"""The authorization services one application instance runs, built from its settings."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from service.auth import jwks
from service.auth.keys import SigningKeys
from service.auth.server import AuthorizationServer
from service.auth.tokens import TokenValidator
from service.db.engine import Database
from service.settings import Settings

# The built-in issuer's keys come from the database: re-reading them on an unknown kid
# (a rotation by another process) may happen far more often than an HTTP fetch.
_LOCAL_REFRESH_S = 1.0


@dataclass(frozen=True)
class AuthServices:
    validator: TokenValidator
    server: AuthorizationServer
    keys: SigningKeys


def build_auth(settings: Settings, database: Database, http: httpx.AsyncClient) -> AuthServices:
    keys = SigningKeys(database, settings.signing_key_file)

    async def local_jwks() -> dict[str, object]:
        return await keys.public_set(time.time_ns() // 1000)

    issuers = {
        issuer: jwks.discovered(http, issuer, min_refresh_s=settings.jwks_min_refresh_seconds)
        for issuer in settings.external_issuers
    }
    issuers[settings.auth_issuer] = jwks.CachedKeySet(local_jwks, min_refresh_s=_LOCAL_REFRESH_S)
    validator = TokenValidator(
        issuers,
        audience=settings.token_audience,
        algorithms=tuple(a.strip() for a in settings.token_algorithms.split(",") if a.strip()),
    )
    server = AuthorizationServer(
        database,
        keys,
        http,
        validator,
        issuer=settings.auth_issuer,
        audience=settings.token_audience,
        min_refresh_s=settings.jwks_min_refresh_seconds,
    )
    return AuthServices(validator, server, keys)
