"""The built-in authorization server's token endpoint, free of HTTP.

``client_credentials`` only, as SMART Backend Services specifies
(https://hl7.org/fhir/smart-app-launch/backend-services.html): the client authenticates with
a signed JWT assertion (``private_key_jwt``: RS384, ES384, or RS512 as NHS England's
signed-JWT pattern uses) or with ``client_secret_basic``, and gets a signed JWT access token
that lives ``TOKEN_LIFETIME_S`` and comes with no refresh token.

An assertion's ``jti`` is recorded in ``used_assertion`` under a primary key, so a replay is
refused even when it reaches another service process sharing the database.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from service.auth import clients, jwks
from service.auth.clients import Client
from service.auth.keys import SigningKeys, alg_of
from service.auth.tokens import LEEWAY_S, InvalidToken, unverified_part
from service.db.engine import Database
from service.db.tables import used_assertion
from service.json_screen import NUL

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384", "RS512")
TOKEN_LIFETIME_S = 300
MAX_ASSERTION_LIFETIME_S = 300
_JTI_LENGTH: int = used_assertion.c.jti.type.length  # type: ignore[attr-defined]


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error response."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _invalid_client(description: str) -> OAuthError:
    return OAuthError(401, "invalid_client", description)


def _storable(value: str, what: str, longest: int | None = None) -> str:
    """A value from the client's credentials as the database can hold it: 400 for a NUL,
    which no text column takes, or for one longer than the column it is written to."""
    if NUL in value:
        raise OAuthError(400, "invalid_request", f"The {what} contains a NUL character")
    if longest is not None and len(value) > longest:
        raise OAuthError(400, "invalid_request", f"The {what} is over {longest} characters")
    return value


class AuthorizationServer:
    def __init__(
        self,
        database: Database,
        keys: SigningKeys,
        http: httpx.AsyncClient,
        *,
        issuer: str,
        audience: str,
        min_refresh_s: float,
        now: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        self.database = database
        self.keys = keys
        self.http = http
        self.issuer = issuer
        self.audience = audience
        self.min_refresh_s = min_refresh_s
        self.now = now
        self._client_key_sets: dict[str, jwks.CachedKeySet] = {}

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    async def token(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", "Only client_credentials is supported")
        if "client_assertion" in form or "client_assertion_type" in form:
            client = await self._assertion_client(form)
        else:
            client = await self._basic_client(authorization)
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

    @staticmethod
    def _granted(client: Client, requested: str | None) -> str:
        """The requested scopes, all of which the client must be registered for.

        Without a ``scope`` parameter the client gets what it is registered for (RFC 6749
        section 3.3 lets the server choose); a ``scope`` sent empty asks for nothing, which
        grants nothing rather than everything.
        """
        registered = client.scopes.split()
        if requested is None:
            return " ".join(registered)
        if not requested.split():
            raise OAuthError(400, "invalid_scope", "The scope parameter names no scope")
        beyond = [s for s in requested.split() if s not in registered]
        if beyond:
            raise OAuthError(400, "invalid_scope", "Not registered for: " + " ".join(beyond))
        return " ".join(requested.split())

    async def _live_client(self, client_id: Any) -> Client:
        client = (
            await clients.find(self.database, _storable(client_id, "client id"))
            if isinstance(client_id, str)
            else None
        )
        if client is None or client.revoked:
            raise _invalid_client("Unknown or revoked client")
        return client

    async def _basic_client(self, authorization: str | None) -> Client:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            raise _invalid_client("Authenticate with a client assertion or HTTP Basic")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise _invalid_client("Malformed HTTP Basic credentials") from error
        client = await self._live_client(unquote(client_id))
        if client.secret_hash is None or not clients.secret_matches(
            unquote(secret), client.secret_hash
        ):
            raise _invalid_client("Wrong client credentials")
        return client

    async def _assertion_client(self, form: Mapping[str, str]) -> Client:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise _invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion", "")
        try:
            header, unverified = unverified_part(assertion, 0), unverified_part(assertion, 1)
        except InvalidToken as error:
            raise _invalid_client("The client assertion is not a well-formed JWT") from error
        client = await self._live_client(unverified.get("iss"))
        key_set = await self._client_keys(client, header.get("kid"))
        try:
            claims = jwt.decode(assertion, key_set, algorithms=list(ASSERTION_ALGORITHMS)).claims
            jwt.JWTClaimsRegistry(
                now=self.now,
                leeway=LEEWAY_S,
                iss={"essential": True, "value": client.client_id},
                sub={"essential": True, "value": client.client_id},
                aud={"essential": True, "value": self.token_url},
                exp={"essential": True},
                jti={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError) as error:
            raise _invalid_client(f"The client assertion is not valid: {error}") from error
        if int(claims["exp"]) > self.now() + MAX_ASSERTION_LIFETIME_S:
            raise _invalid_client("The client assertion's exp is more than 5 minutes ahead")
        jti = _storable(str(claims["jti"]), "client assertion's jti", _JTI_LENGTH)
        await self._spend(client.client_id, jti, int(claims["exp"]))
        return client

    async def _client_keys(self, client: Client, kid: Any) -> KeySet:
        try:
            if client.jwks is not None:
                return KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]
            if client.jwks_url is not None:
                cached = self._client_key_sets.setdefault(
                    client.client_id,
                    jwks.at_url(self.http, client.jwks_url, min_refresh_s=self.min_refresh_s),
                )
                return await cached.get(kid if isinstance(kid, str) else None)
        except (jwks.KeySetUnavailable, ValueError, KeyError, TypeError) as error:
            raise _invalid_client("The client's key set cannot be used") from error
        raise _invalid_client("This client authenticates with a secret, not an assertion")

    async def _spend(self, client_id: str, jti: str, expires: int) -> None:
        """Record the assertion as used; a second use (here or elsewhere) is refused."""
        now_us = self.now() * 1_000_000
        try:
            async with self.database.write() as connection:
                await connection.execute(
                    delete(used_assertion).where(used_assertion.c.expires < now_us)
                )
                await connection.execute(
                    used_assertion.insert().values(
                        client_id=client_id, jti=jti, expires=(expires + LEEWAY_S) * 1_000_000
                    )
                )
        except IntegrityError as error:
            raise _invalid_client("The client assertion's jti was already used") from error
