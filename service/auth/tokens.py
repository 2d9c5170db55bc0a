"""Bearer token validation: which issuer signed it, with which key, for whom, until when.

JOSE work is done by joserfc, the JOSE library of the authlib project (``authlib.jose`` is
deprecated in its favour). Checks, in order: the header's ``alg`` is on the allowed list
(never ``none``, never an HMAC algorithm, so a public key can never be used as a shared
secret); the unverified ``iss`` names a trusted issuer; the signature verifies against that
issuer's key set (refreshed, at a bounded rate, when the ``kid`` is unknown); then ``iss``,
``aud``, ``exp`` and ``nbf`` with a small clock leeway.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from service.auth.jwks import CachedKeySet, KeySetUnavailable

LEEWAY_S = 30
_SYMMETRIC = ("HS", "none")


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


class TokenValidator:
    def __init__(
        self,
        issuers: Mapping[str, CachedKeySet],
        *,
        audience: str,
        algorithms: tuple[str, ...],
        now: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        self.issuers = dict(issuers)
        self.audience = audience
        self.algorithms = tuple(a for a in algorithms if not a.startswith(_SYMMETRIC))
        self.now = now

    async def validate(self, token: str) -> dict[str, Any]:
        """The verified claims, or ``InvalidToken``."""
        header = unverified_part(token, 0)
        if header.get("alg") not in self.algorithms:
            raise InvalidToken(f"Tokens signed with {header.get('alg')!r} are not accepted")
        issuer = unverified_part(token, 1).get("iss")
        if not isinstance(issuer, str) or issuer not in self.issuers:
            raise InvalidToken("The token's issuer is not trusted")
        kid = header.get("kid")
        try:
            keys = await self.issuers[issuer].get(kid if isinstance(kid, str) else None)
            verified = jwt.decode(token, keys, algorithms=list(self.algorithms))
            jwt.JWTClaimsRegistry(
                now=self.now,
                leeway=LEEWAY_S,
                iss={"essential": True, "value": issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
            ).validate(verified.claims)
        except KeySetUnavailable as error:
            raise InvalidToken("The issuer's signing keys cannot be obtained") from error
        except (JoseError, ValueError) as error:
            raise InvalidToken(f"The access token is not valid: {error}") from error
        return dict(verified.claims)
