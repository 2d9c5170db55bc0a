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
        """The cached set, fetched first if it lacks ``kid`` and the rate limit allows."""
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
