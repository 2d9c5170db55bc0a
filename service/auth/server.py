"""The built-in authorization server's token and introspection endpoints, free of HTTP.

``client_credentials`` only, as SMART Backend Services specifies
(https://hl7.org/fhir/smart-app-launch/backend-services.html): the client authenticates
(``service.auth.client_auth``) and gets a signed JWT access token for the scopes it asked for
and is registered for (``service.auth.grants``), that lives ``TOKEN_LIFETIME_S`` and comes
with no refresh token.

Introspection (RFC 7662, which SMART recommends) answers, to any registered client, whether a
token this server issued is still one the FHIR endpoints accept, and what it grants.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from joserfc import jwt

from service.auth import grants
from service.auth.client_auth import ClientAuthenticator
from service.auth.clients import Client
from service.auth.keys import SigningKeys, alg_of
from service.auth.oauth_errors import OAuthError, invalid_request
from service.auth.tokens import InvalidToken, TokenValidator
from service.db.engine import Database

GRANT_TYPES = ("client_credentials",)
TOKEN_LIFETIME_S = 300
# What introspection tells of an active token (RFC 7662 section 2.2, SMART's list).
_INTROSPECTED = ("scope", "client_id", "exp", "iat", "iss", "sub", "aud", "patient", "fhirUser")


class AuthorizationServer:
    def __init__(
        self,
        database: Database,
        keys: SigningKeys,
        http: httpx.AsyncClient,
        validator: TokenValidator,
        *,
        issuer: str,
        audience: str,
        min_refresh_s: float,
        now: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        self.keys = keys
        self.validator = validator
        self.issuer = issuer
        self.audience = audience
        self.now = now
        self.clients = ClientAuthenticator(
            database,
            http,
            audiences=(self.token_url, self.introspection_url),
            min_refresh_s=min_refresh_s,
            now=now,
        )

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.issuer}/introspect"

    async def token(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise invalid_request("grant_type is required")
        if grant_type not in GRANT_TYPES:
            raise OAuthError(
                400, "unsupported_grant_type", "The grant types served: " + ", ".join(GRANT_TYPES)
            )
        client = await self.clients.authenticate(form, authorization)
        scope = self._granted(client, form.get("scope"))
        now = self.now()
        key = await self.keys.signing(now * 1_000_000)
        alg = alg_of(key)
        claims = {
            "iss": self.issuer,
            "sub": client.client_id,
            "aud": self.audience,
            "client_id": client.client_id,
            "scope": scope,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME_S,
            "jti": str(uuid.uuid4()),
        }
        token = jwt.encode({"alg": alg, "kid": key.kid, "typ": "at+jwt"}, claims, key, [alg])
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_S,
            "scope": scope,
        }

    async def introspect(
        self, form: Mapping[str, str], authorization: str | None
    ) -> dict[str, Any]:
        """RFC 7662: ``active`` and the token's grant, or only ``active: false`` for a token
        that is expired, forged, unreadable or issued by another server."""
        await self.clients.authenticate(form, authorization)
        token = form.get("token")
        if not token:
            raise invalid_request("token is required")
        try:
            claims = await self.validator.validate(token)
        except InvalidToken:
            return {"active": False}
        if claims.get("iss") != self.issuer:
            return {"active": False}
        return {"active": True, **{k: claims[k] for k in _INTROSPECTED if k in claims}}

    @staticmethod
    def _granted(client: Client, requested: str | None) -> str:
        """What the client asked for and is registered for (``service.auth.grants``).

        Without a ``scope`` parameter the client gets what it is registered for (RFC 6749
        section 3.3 lets the server choose); a ``scope`` sent empty asks for nothing, which
        grants nothing rather than everything; a request none of which can be granted is
        refused, naming what was asked.
        """
        if requested is None:
            return client.scopes
        if not requested.split():
            raise OAuthError(400, "invalid_scope", "The scope parameter names no scope")
        granted = grants.granted(requested, client.scopes)
        if not granted:
            raise OAuthError(
                400, "invalid_scope", "Not registered for any of: " + " ".join(requested.split())
            )
        return " ".join(granted)
