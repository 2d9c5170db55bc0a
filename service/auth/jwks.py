"""Key sets, cached, refreshed on an unknown ``kid`` at a bounded rate.

Remote sets are fetched over HTTP, the built-in issuer's read from the database.
An external issuer's keys are found through its OpenID discovery document
(``{issuer}/.well-known/openid-configuration`` -> ``jwks_uri``); a client registered with a
JWKS URL names its key set directly. Either way the set is cached in the process and fetched
again only when a token names a key the cache does not hold, and then at most once per
``min_refresh_s`` — a stream of tokens with made-up ``kid`` values cannot turn the service
into a load generator against the identity provider.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from joserfc.jwk import KeySet

Monotonic = Callable[[], float]


class KeySetUnavailable(Exception):
    """The key set could not be fetched or parsed (the token is refused, never trusted)."""


class UnknownKey(Exception):
    """A JWT's ``kid`` names no key of its issuer's set (the token is refused)."""


def key_named(keys: KeySet, kid: object) -> KeySet:
    """The keys a JWT whose header has ``kid`` may be verified with.

    A ``kid`` names one key and only that key may verify the signature, even if another key
    of the set would: the choice is made here rather than left to the JOSE library's way of
    guessing keys. Without a ``kid`` the set is used as it is (the library then accepts only
    a set of one key).
    """
    if kid is None:
        return keys
    named = [key for key in keys.keys if isinstance(kid, str) and key.kid == kid]
    if not named:
        raise UnknownKey(f"The kid {kid!r} names no key of the issuer's key set")
    return KeySet(named)


async def fetch_json(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise KeySetUnavailable(f"{url}: {error}") from error
    if not isinstance(document, dict):
        raise KeySetUnavailable(f"{url} did not return a JSON object")
    return document


class CachedKeySet:
    """One key set, cached; ``load`` fetches its JWKS document (over HTTP, or locally)."""

    def __init__(
        self,
        load: Callable[[], Awaitable[dict[str, Any]]],
        *,
        min_refresh_s: float,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.load = load
        self.min_refresh_s = min_refresh_s
        self.monotonic = monotonic
        self._keys: KeySet | None = None
        self._fetched_at: float | None = None

    async def get(self, kid: str | None) -> KeySet:
        """The cached set, fetched first if it lacks ``kid`` and the rate limit allows.

        A ``kid`` the cached set lacks is one refresh at most (none within ``min_refresh_s``
        of the last one): a key that is still missing after it is unknown (``key_named``).
        """
        if self._keys is not None and _holds(self._keys, kid):
            return self._keys
        now = self.monotonic()
        if (
            self._keys is None
            or self._fetched_at is None
            or now - self._fetched_at >= self.min_refresh_s
        ):
            self._fetched_at = now
            document = await self.load()
            try:
                self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (ValueError, KeyError, TypeError) as error:
                raise KeySetUnavailable(f"unusable key set: {error}") from error
        return self._keys


def _holds(keys: KeySet, kid: str | None) -> bool:
    return kid is None or any(key.kid == kid for key in keys.keys)


def discovered(http: httpx.AsyncClient, issuer: str, *, min_refresh_s: float) -> CachedKeySet:
    """The key set of an OpenID provider, located through its discovery document."""

    async def locate() -> dict[str, Any]:
        document = await fetch_json(http, issuer.rstrip("/") + "/.well-known/openid-configuration")
        if document.get("issuer") != issuer or not isinstance(document.get("jwks_uri"), str):
            raise KeySetUnavailable(
                f"{issuer}: discovery document names another issuer or no jwks_uri"
            )
        return await fetch_json(http, str(document["jwks_uri"]))

    return CachedKeySet(locate, min_refresh_s=min_refresh_s)


def at_url(http: httpx.AsyncClient, url: str, *, min_refresh_s: float) -> CachedKeySet:
    async def load() -> dict[str, Any]:
        return await fetch_json(http, url)

    return CachedKeySet(load, min_refresh_s=min_refresh_s)
