"""Bearer token validation: which issuer signed it, with which key, for whom, until when.

JOSE work is done by joserfc, the JOSE library of the authlib project (``authlib.jose`` is
deprecated in its favour). Checks, in order: the header's ``alg`` is on the allowed list
(never ``none``, never an HMAC algorithm, so a public key can never be used as a shared
secret); the unverified ``iss`` names a trusted issuer; the signature verifies against the
key of that issuer's key set that the ``kid`` names, and no other (the set is refreshed, at a
bounded rate, when the ``kid`` is unknown; a ``kid`` still unknown after that is refused);
then ``iss``, ``aud``, ``exp`` and ``nbf`` with a small clock leeway; and a ``patient`` claim
(SMART's launch context) must be one FHIR id, since it confines the token to that one patient.

Clients reuse one token for many requests, and the signature check was about a tenth of an
authenticated read's time, so verified claims are cached per token string (a bounded LRU).
A cached token is served only while ``exp`` has not passed (the leeway is never granted from
the cache), its issuer is still trusted and the issuer's key set is still the very set that
verified it; after a key set refresh (rotation, a revoked key) each token is verified
afresh. Refusals are never cached.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from service.auth.jwks import CachedKeySet, KeySetUnavailable, UnknownKey, key_named

LEEWAY_S = 30
CACHED_TOKENS = 10_000
_SYMMETRIC = ("HS", "none")
# R4 id: https://hl7.org/fhir/R4/datatypes.html#id
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


class InvalidToken(Exception):
    """Why a token was refused; the message is safe to show to the client."""


def unverified_part(token: str, index: int) -> dict[str, Any]:
    """The JWT's header (0) or claims (1), not yet verified: only to choose how to verify."""
    try:
        part = token.split(".")[index]
        decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError) as error:
        raise InvalidToken("The access token is not a well-formed JWT") from error
    if not isinstance(decoded, dict):
        raise InvalidToken("The access token is not a well-formed JWT")
    return decoded


class _Verified(NamedTuple):
    claims: dict[str, Any]
    expires: int
    issuer: str
    kid: str | None
    keys: KeySet


class TokenValidator:
    def __init__(
        self,
        issuers: Mapping[str, CachedKeySet],
        *,
        audience: str,
        algorithms: tuple[str, ...],
        now: Callable[[], int] = lambda: int(time.time()),
        cache_size: int = CACHED_TOKENS,
    ) -> None:
        self.issuers = dict(issuers)
        self.audience = audience
        self.algorithms = tuple(a for a in algorithms if not a.startswith(_SYMMETRIC))
        self.now = now
        self.cache_size = cache_size
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    async def validate(self, token: str) -> dict[str, Any]:
        """The verified claims, or ``InvalidToken``."""
        cached = self._verified.get(token)
        if cached is not None:
            # other requests may evict or replace entries while this one awaits the key set
            if await self._still_valid(cached):
                if token in self._verified:
                    self._verified.move_to_end(token)
                return dict(cached.claims)
            self._verified.pop(token, None)
        verified = await self._verify(token)
        self._verified[token] = verified
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)
        return dict(verified.claims)

    async def _still_valid(self, cached: _Verified) -> bool:
        issuer = self.issuers.get(cached.issuer)
        if issuer is None or self.now() >= cached.expires:
            return False
        try:
            return await issuer.get(cached.kid) is cached.keys
        except KeySetUnavailable:
            return False

    async def _verify(self, token: str) -> _Verified:
        header = unverified_part(token, 0)
        if header.get("alg") not in self.algorithms:
            raise InvalidToken(f"Tokens signed with {header.get('alg')!r} are not accepted")
        issuer = unverified_part(token, 1).get("iss")
        if not isinstance(issuer, str) or issuer not in self.issuers:
            raise InvalidToken("The token's issuer is not trusted")
        kid = header.get("kid")
        try:
            keys = await self.issuers[issuer].get(kid if isinstance(kid, str) else None)
            verified = jwt.decode(token, key_named(keys, kid), algorithms=list(self.algorithms))
            jwt.JWTClaimsRegistry(
                now=self.now,
                leeway=LEEWAY_S,
                iss={"essential": True, "value": issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
            ).validate(verified.claims)
        except KeySetUnavailable as error:
            raise InvalidToken("The issuer's signing keys cannot be obtained") from error
        except UnknownKey as error:
            raise InvalidToken(str(error)) from error
        except (JoseError, ValueError) as error:
            raise InvalidToken(f"The access token is not valid: {error}") from error
        claims = dict(verified.claims)
        patient = claims.get("patient")
        if patient is not None and not (isinstance(patient, str) and _FHIR_ID.fullmatch(patient)):
            raise InvalidToken("The token's patient claim is not one FHIR id")
        # ``exp`` is essential and was checked to be a number just above
        return _Verified(
            claims, int(claims["exp"]), issuer, kid if isinstance(kid, str) else None, keys
        )
