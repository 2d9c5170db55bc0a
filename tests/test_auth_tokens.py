"""The resource server: every way a bearer token can be wrong is 401, lacking scope is 403,
and neither answer carries data."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt

from service.auth.jwks import CachedKeySet
from service.auth.tokens import LEEWAY_S, InvalidToken, TokenValidator
from tests.authkit import (
    ISSUER,
    b64,
    bearer,
    built_in_key,
    claims,
    ec_key,
    mint,
    public_jwks,
    secure_client,
    unsigned,
)
from tests.conftest import BASE

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
FULL = "system/*.cruds"
PATIENT = {"resourceType": "Patient", "name": [{"family": "Okafor"}]}


async def _secure(app_factory: AppFactory, database_url: str) -> tuple[httpx.AsyncClient, str]:
    client = await secure_client(app_factory)
    token = await mint(database_url, FULL)
    created = await client.post("/Patient", json=PATIENT, headers=bearer(token))
    assert created.status_code == 201, created.text
    return client, created.json()["id"]


def _assert_refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "Okafor" not in response.text
    if status == 401:
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def _hs256_with_public_key(database_url: str) -> str:
    """The classic key-confusion forgery: HMAC keyed with the issuer's public key."""
    key = await built_in_key(database_url)
    secret = json.dumps(key.as_dict(private=False)).encode()
    header = b64(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
    payload = b64(json.dumps(claims(FULL)).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


async def _tampered(database_url: str) -> str:
    header, _payload, signature = (await mint(database_url, "system/Practitioner.rs")).split(".")
    return f"{header}.{b64(json.dumps(claims(FULL)).encode())}.{signature}"


async def _unknown_kid(_: str) -> str:
    key = ec_key()
    return jwt.encode({"alg": "ES384", "kid": key.kid}, claims(FULL), key, ["ES384"])


async def _kid_of_no_key(database_url: str) -> str:
    """Signed by the issuer's own key, under a ``kid`` that names no key of its set."""
    key = await built_in_key(database_url)
    return jwt.encode({"alg": "ES256", "kid": "no-such-key"}, claims(FULL), key, ["ES256"])


async def _wrong_issuer(_: str) -> str:
    key = ec_key()
    return jwt.encode(
        {"alg": "ES384", "kid": key.kid}, claims(FULL, iss="https://evil"), key, ["ES384"]
    )


async def _alg_none(_: str) -> str:
    return unsigned(claims(FULL), {"alg": "none", "typ": "JWT"})


def _minted(**overrides: Any) -> Callable[[str], Awaitable[str]]:
    async def make(database_url: str) -> str:
        return await mint(database_url, FULL, **overrides)

    return make


BAD_TOKENS: dict[str, Callable[[str], Awaitable[str]]] = {
    "expired": _minted(exp=int(time.time()) - 120, iat=int(time.time()) - 600),
    "not-yet-valid": _minted(nbf=int(time.time()) + 600),
    "wrong-audience": _minted(aud="https://another-server/fhir"),
    "no-audience": _minted(aud=None),
    "no-expiry": _minted(exp=None),
    "wrong-issuer": _wrong_issuer,
    "issuer-claim-of-trusted-but-foreign-key": _unknown_kid,
    "kid-naming-no-key-of-the-issuer": _kid_of_no_key,
    "alg-none": _alg_none,
    "hs256-with-public-key": _hs256_with_public_key,
    "tampered-payload": _tampered,
}


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_bad_token_is_401_without_data(
    app_factory: AppFactory, database_url: str, case: str
) -> None:
    client, patient_id = await _secure(app_factory, database_url)
    token = await BAD_TOKENS[case](database_url)
    _assert_refused(await client.get(f"/Patient/{patient_id}", headers=bearer(token)), 401)
    _assert_refused(await client.get("/Patient", headers=bearer(token)), 401)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer not.a.jwt"}],
    ids=["missing", "basic", "garbage"],
)
async def test_missing_or_malformed_token_is_401(
    app_factory: AppFactory, database_url: str, headers: dict[str, str]
) -> None:
    client, patient_id = await _secure(app_factory, database_url)
    response = await client.get(f"/Patient/{patient_id}", headers=headers)
    if headers.get("Authorization", "").startswith("Bearer"):
        _assert_refused(response, 401)
    else:  # no bearer credentials sent: a challenge without an error code (RFC 6750 3.1)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == 'Bearer realm="keyworker"'


async def test_token_lacking_scope_is_403(app_factory: AppFactory, database_url: str) -> None:
    client, patient_id = await _secure(app_factory, database_url)
    token = await mint(database_url, "system/Practitioner.rs openid")
    _assert_refused(await client.get(f"/Patient/{patient_id}", headers=bearer(token)), 403)
    _assert_refused(await client.get("/Patient?family=Okafor", headers=bearer(token)), 403)
    _assert_refused(await client.get("/_history", headers=bearer(token)), 403)


async def test_write_with_read_only_scope_is_403_and_writes_nothing(
    app_factory: AppFactory, database_url: str
) -> None:
    client, patient_id = await _secure(app_factory, database_url)
    for scope in ("system/Patient.rs", "system/*.read", "user/Patient.read"):
        token = await mint(database_url, scope)
        update = {**PATIENT, "id": patient_id, "name": [{"family": "Changed"}]}
        for response in (
            await client.put(f"/Patient/{patient_id}", json=update, headers=bearer(token)),
            await client.post("/Patient", json=PATIENT, headers=bearer(token)),
            await client.delete(f"/Patient/{patient_id}", headers=bearer(token)),
        ):
            _assert_refused(response, 403)
    token = await mint(database_url, "system/Patient.rs")
    found = await client.get("/Patient", headers=bearer(token))
    assert [e["resource"]["name"][0]["family"] for e in found.json()["entry"]] == ["Okafor"]


async def test_v1_and_v2_scopes_grant_their_interactions(
    app_factory: AppFactory, database_url: str
) -> None:
    client, patient_id = await _secure(app_factory, database_url)
    for scope in ("system/Patient.read", "system/Patient.rs", "user/*.read", "system/*.*"):
        token = await mint(database_url, scope)
        response = await client.get(f"/Patient/{patient_id}", headers=bearer(token))
        assert response.status_code == 200, (scope, response.text)
    only_search = await mint(database_url, "system/Patient.s")
    assert (await client.get("/Patient", headers=bearer(only_search))).status_code == 200
    _assert_refused(await client.get(f"/Patient/{patient_id}", headers=bearer(only_search)), 403)
    create_only = await mint(database_url, "system/Patient.c")
    created = await client.post("/Patient", json=PATIENT, headers=bearer(create_only))
    assert created.status_code == 201


async def test_auth_on_means_no_insecure_header_and_public_discovery(
    app_factory: AppFactory, database_url: str
) -> None:
    client, patient_id = await _secure(app_factory, database_url)
    token = await mint(database_url, FULL)
    responses = [
        await client.get(f"/Patient/{patient_id}", headers=bearer(token)),
        await client.get("/metadata"),
        await client.get("/.well-known/smart-configuration"),
        await client.get(f"/Patient/{patient_id}"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 401]
    assert all("x-keyworker-insecure" not in r.headers for r in responses)
    smart = responses[2].json()
    assert smart["issuer"] == ISSUER
    assert smart["token_endpoint"] == f"{ISSUER}/token"
    assert {"private_key_jwt", "client_secret_basic", "client_secret_post"} == set(
        smart["token_endpoint_auth_methods_supported"]
    )
    assert {"RS384", "ES384"} <= set(smart["token_endpoint_auth_signing_alg_values_supported"])
    assert "permission-v2" in smart["capabilities"]
    security = responses[1].json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"


async def test_key_set_refreshes_on_unknown_kid_at_a_bounded_rate() -> None:
    key, other = ec_key(), ec_key()
    served = [public_jwks(key)]
    fetches: list[float] = []
    clock = [1000.0]

    async def load() -> dict[str, Any]:
        fetches.append(clock[0])
        return served[-1]

    cache = CachedKeySet(load, min_refresh_s=30, monotonic=lambda: clock[0])
    await cache.get(key.kid)
    await cache.get(key.kid)
    assert len(fetches) == 1
    served.append(public_jwks(key, other))
    for _ in range(5):  # unknown kids within the interval: no new fetches
        await cache.get("made-up")
    assert len(fetches) == 1
    clock[0] += 31
    keys = await cache.get(other.kid)  # after the interval: one refresh finds the new key
    assert len(fetches) == 2
    assert keys.get_by_kid(other.kid) is not None


async def test_a_kid_naming_no_key_is_refused_after_one_refresh_though_a_key_verifies() -> None:
    key = ec_key()
    fetches: list[float] = []
    clock = [1000.0]

    async def load() -> dict[str, Any]:
        fetches.append(clock[0])
        return public_jwks(key)

    validator = TokenValidator(
        {ISSUER: CachedKeySet(load, min_refresh_s=30, monotonic=lambda: clock[0])},
        audience=BASE,
        algorithms=("ES384",),
    )
    signed = jwt.encode({"alg": "ES384", "kid": key.kid}, claims(FULL), key, ["ES384"])
    assert (await validator.validate(signed))["scope"] == FULL
    clock[0] += 31
    for kid in ("renamed", "renamed-again"):  # the second is within the refresh interval
        lying = jwt.encode({"alg": "ES384", "kid": kid}, claims(FULL), key, ["ES384"])
        with pytest.raises(InvalidToken, match="names no key"):
            await validator.validate(lying)
    assert len(fetches) == 2


async def test_verified_tokens_are_cached_until_exp_and_while_their_keys_are_trusted() -> None:
    key, rotated = ec_key(), ec_key()
    served = [public_jwks(key)]
    clock = [int(time.time()), 1000.0]

    async def load() -> dict[str, Any]:
        return served[-1]

    keys = CachedKeySet(load, min_refresh_s=30, monotonic=lambda: clock[1])
    validator = TokenValidator(
        {ISSUER: keys}, audience=BASE, algorithms=("ES384",), now=lambda: clock[0]
    )
    token = jwt.encode(
        {"alg": "ES384", "kid": key.kid}, claims(FULL, exp=clock[0] + 60), key, ["ES384"]
    )
    verifications = 0
    verify = validator._verify

    async def counted(value: str) -> Any:
        nonlocal verifications
        verifications += 1
        return await verify(value)

    validator._verify = counted  # type: ignore[method-assign]
    for _ in range(3):
        assert (await validator.validate(token))["scope"] == FULL
    assert verifications == 1  # the signature is checked once per token

    clock[0] += 60  # at exp the cache no longer answers; only the leeway accepts it now
    await validator.validate(token)
    assert verifications == 2
    clock[0] += LEEWAY_S + 1
    with pytest.raises(InvalidToken):
        await validator.validate(token)

    fresh = jwt.encode(
        {"alg": "ES384", "kid": key.kid}, claims(FULL, exp=clock[0] + 60), key, ["ES384"]
    )
    await validator.validate(fresh)
    served.append(public_jwks(rotated))  # the issuer drops the key; a refresh finds that out
    clock[1] += 31
    other = jwt.encode(
        {"alg": "ES384", "kid": rotated.kid}, claims(FULL, exp=clock[0] + 60), rotated, ["ES384"]
    )
    await validator.validate(other)
    with pytest.raises(InvalidToken):  # cached, but its key set is no longer the one trusted
        await validator.validate(fresh)


async def test_the_token_cache_is_bounded() -> None:
    key = ec_key()

    async def load() -> dict[str, Any]:
        return public_jwks(key)

    validator = TokenValidator(
        {ISSUER: CachedKeySet(load, min_refresh_s=30)},
        audience=BASE,
        algorithms=("ES384",),
        cache_size=2,
    )
    for _ in range(5):
        token = jwt.encode({"alg": "ES384", "kid": key.kid}, claims(FULL), key, ["ES384"])
        await validator.validate(token)
    assert len(validator._verified) == 2
