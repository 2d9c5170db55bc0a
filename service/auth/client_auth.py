"""How a client proves who it is to the built-in authorization server (token, introspection).

Three methods, as SMART (https://hl7.org/fhir/smart-app-launch/client-confidential-
asymmetric.html) and RFC 6749 section 2.3.1 name them:

* ``private_key_jwt`` — a signed JWT assertion (RS384, ES384, or RS512 as NHS England's
  signed-JWT pattern uses) verified with the client's registered JWKS or JWKS URL;
* ``client_secret_basic`` — client id and secret in HTTP Basic;
* ``client_secret_post`` — ``client_id`` and ``client_secret`` in the form body (what
  @medplum/core sends).

A request that uses more than one method, or a method's parameters wrongly, is
``invalid_request`` (400); credentials that do not prove the client are ``invalid_client``
(401). An assertion's ``jti`` is recorded in ``used_assertion`` under a primary key, so a
replay is refused even when it reaches another service process sharing the database.
"""

from __future__ import annotations

import base64
import binascii
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
from service.auth.oauth_errors import invalid_client, invalid_request
from service.auth.tokens import LEEWAY_S, InvalidToken, unverified_part
from service.db.engine import Database
from service.db.tables import used_assertion
from service.json_screen import NUL

METHODS = ("private_key_jwt", "client_secret_basic", "client_secret_post")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384", "RS512")
MAX_ASSERTION_LIFETIME_S = 300
_JTI_LENGTH: int = used_assertion.c.jti.type.length  # type: ignore[attr-defined]


def _storable(value: str, what: str, longest: int | None = None) -> str:
    """A value from the client's credentials as the database can hold it: 400 for a NUL,
    which no text column takes, or for one longer than the column it is written to."""
    if NUL in value:
        raise invalid_request(f"The {what} contains a NUL character")
    if longest is not None and len(value) > longest:
        raise invalid_request(f"The {what} is over {longest} characters")
    return value


def _method(form: Mapping[str, str], authorization: str | None) -> str:
    """The one authentication method the request uses."""
    used = [
        method
        for method, present in (
            ("private_key_jwt", "client_assertion" in form or "client_assertion_type" in form),
            ("client_secret_basic", authorization is not None),
            ("client_secret_post", "client_secret" in form),
        )
        if present
    ]
    if len(used) > 1:
        raise invalid_request("Authenticate the client one way only, not " + " and ".join(used))
    if not used:
        raise invalid_client("Authenticate the client: " + ", ".join(METHODS))
    return used[0]


class ClientAuthenticator:
    def __init__(
        self,
        database: Database,
        http: httpx.AsyncClient,
        *,
        audiences: tuple[str, ...],
        min_refresh_s: float,
        now: Callable[[], int],
    ) -> None:
        """``audiences``: what an assertion's ``aud`` may be (the endpoints' URLs)."""
        self.database = database
        self.http = http
        self.audiences = audiences
        self.min_refresh_s = min_refresh_s
        self.now = now
        self._client_key_sets: dict[str, jwks.CachedKeySet] = {}

    async def authenticate(self, form: Mapping[str, str], authorization: str | None) -> Client:
        """The registered, live client the request proves it is (else ``OAuthError``).

        A ``client_id`` in the form, which any method may send, must name that client.
        """
        method = _method(form, authorization)
        if method == "private_key_jwt":
            client = await self._assertion_client(form)
        elif method == "client_secret_basic":
            client = await self._basic_client(authorization or "")
        else:
            client = await self._secret_client(form.get("client_id"), form["client_secret"])
        if form.get("client_id", client.client_id) != client.client_id:
            raise invalid_request("The client_id is not the client the credentials are for")
        return client

    async def _live_client(self, client_id: Any) -> Client:
        client = (
            await clients.find(self.database, _storable(client_id, "client id"))
            if isinstance(client_id, str)
            else None
        )
        if client is None or client.revoked:
            raise invalid_client("Unknown or revoked client")
        return client

    async def _secret_client(self, client_id: str | None, secret: str) -> Client:
        if client_id is None:
            raise invalid_request("client_secret is sent with the client_id it belongs to")
        client = await self._live_client(client_id)
        if client.secret_hash is None or not clients.secret_matches(secret, client.secret_hash):
            raise invalid_client("Wrong client credentials")
        return client

    async def _basic_client(self, authorization: str) -> Client:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise invalid_client("Authenticate the client: " + ", ".join(METHODS))
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise invalid_client("Malformed HTTP Basic credentials") from error
        return await self._secret_client(unquote(client_id), unquote(secret))

    async def _assertion_client(self, form: Mapping[str, str]) -> Client:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise invalid_request(f"client_assertion_type must be {ASSERTION_TYPE}")
        if not form.get("client_assertion"):
            raise invalid_request("client_assertion is required with client_assertion_type")
        assertion = form["client_assertion"]
        try:
            header, unverified = unverified_part(assertion, 0), unverified_part(assertion, 1)
        except InvalidToken as error:
            raise invalid_client("The client assertion is not a well-formed JWT") from error
        client = await self._live_client(unverified.get("iss"))
        kid = header.get("kid")
        key_set = await self._client_keys(client, kid)
        try:
            claims = jwt.decode(
                assertion, jwks.key_named(key_set, kid), algorithms=list(ASSERTION_ALGORITHMS)
            ).claims
            jwt.JWTClaimsRegistry(
                now=self.now,
                leeway=LEEWAY_S,
                iss={"essential": True, "value": client.client_id},
                sub={"essential": True, "value": client.client_id},
                aud={"essential": True, "values": list(self.audiences)},
                exp={"essential": True},
                jti={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError, jwks.UnknownKey) as error:
            raise invalid_client(f"The client assertion is not valid: {error}") from error
        if int(claims["exp"]) > self.now() + MAX_ASSERTION_LIFETIME_S:
            raise invalid_client("The client assertion's exp is more than 5 minutes ahead")
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
            raise invalid_client("The client's key set cannot be used") from error
        raise invalid_client("This client authenticates with a secret, not an assertion")

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
            raise invalid_client("The client assertion's jti was already used") from error
