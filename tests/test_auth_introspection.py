"""Token introspection (RFC 7662) at /auth/introspect, as SMART recommends: registered clients
ask whether a token is active and what it grants; discovery names the endpoint."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from joserfc import jwt

from tests.authkit import (
    ISSUER,
    TOKEN_URL,
    claims,
    ec_key,
    mint,
    public_jwks,
    register,
    secure_client,
)
from tests.conftest import BASE
from tests.test_auth_server import assertion, form

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
INTROSPECT_URL = f"{ISSUER}/introspect"


async def _secret_client(
    app_factory: AppFactory, database_url: str, scopes: str = "system/*.rs"
) -> tuple[httpx.AsyncClient, tuple[str, str]]:
    api = await secure_client(app_factory)
    client_id, secret = await register(database_url, scopes)
    assert secret is not None
    return api, (client_id, secret)


async def test_an_issued_token_is_active_with_its_grant(
    app_factory: AppFactory, database_url: str
) -> None:
    api, credentials = await _secret_client(app_factory, database_url, "system/*.cruds")
    issued = await api.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "scope": "system/CareTeam.rs"},
        auth=credentials,
    )
    assert issued.status_code == 200, issued.text
    answer = await api.post(
        INTROSPECT_URL, data={"token": issued.json()["access_token"]}, auth=credentials
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["active"] is True
    assert body["scope"] == "system/CareTeam.rs"
    assert body["client_id"] == body["sub"] == credentials[0]
    assert body["iss"] == ISSUER
    assert body["aud"] == BASE
    assert body["iat"] <= time.time() < body["exp"] <= body["iat"] + 300
    assert "patient" not in body and "fhirUser" not in body


async def test_patient_and_fhir_user_claims_are_told(
    app_factory: AppFactory, database_url: str
) -> None:
    api, credentials = await _secret_client(app_factory, database_url)
    token = await mint(database_url, "patient/*.rs", patient="p1", fhirUser="Practitioner/pr1")
    body = (await api.post(INTROSPECT_URL, data={"token": token}, auth=credentials)).json()
    assert body["active"] is True
    assert (body["patient"], body["fhirUser"], body["scope"]) == (
        "p1",
        "Practitioner/pr1",
        "patient/*.rs",
    )


@pytest.mark.parametrize("case", ["expired", "forged", "garbage", "unknown-kid"])
async def test_an_unusable_token_is_inactive_and_nothing_else(
    app_factory: AppFactory, database_url: str, case: str
) -> None:
    api, credentials = await _secret_client(app_factory, database_url)
    if case == "expired":
        token = await mint(database_url, "system/*.rs", exp=int(time.time()) - 120)
    elif case == "forged":
        header, payload, _ = (await mint(database_url, "system/*.rs")).split(".")
        token = f"{header}.{payload}.{(await mint(database_url, 'system/*.cruds')).split('.')[2]}"
    elif case == "garbage":
        token = "not-a-token"
    else:
        key = ec_key()
        token = jwt.encode({"alg": "ES384", "kid": key.kid}, claims("system/*.rs"), key, ["ES384"])
    answer = await api.post(INTROSPECT_URL, data={"token": token}, auth=credentials)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"active": False}


async def test_a_client_may_introspect_with_a_signed_assertion(
    app_factory: AppFactory, database_url: str
) -> None:
    api = await secure_client(app_factory)
    key = ec_key()
    client_id, _ = await register(database_url, "system/*.rs", jwks=public_jwks(key))
    token = await mint(database_url, "system/*.rs")
    for audience in (TOKEN_URL, INTROSPECT_URL):
        data = form(assertion(client_id, key, "ES384", aud=audience)) | {"token": token}
        data.pop("grant_type")
        answer = await api.post(INTROSPECT_URL, data=data)
        assert answer.status_code == 200, answer.text
        assert answer.json()["active"] is True


@pytest.mark.parametrize("case", ["no-client", "wrong-secret", "no-token"])
async def test_introspection_needs_a_registered_client_and_a_token(
    app_factory: AppFactory, database_url: str, case: str
) -> None:
    api, (client_id, secret) = await _secret_client(app_factory, database_url)
    token = await mint(database_url, "system/*.rs")
    if case == "no-client":
        answer = await api.post(INTROSPECT_URL, data={"token": token})
    elif case == "wrong-secret":
        answer = await api.post(INTROSPECT_URL, data={"token": token}, auth=(client_id, "no"))
    else:
        answer = await api.post(
            INTROSPECT_URL, data={"client_id": client_id, "client_secret": secret}
        )
    status, error = (400, "invalid_request") if case == "no-token" else (401, "invalid_client")
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert "active" not in answer.json()


async def test_discovery_lists_introspection_and_only_the_flows_served(
    app_factory: AppFactory, database_url: str
) -> None:
    api = await secure_client(app_factory)
    smart = (await api.get("/.well-known/smart-configuration")).json()
    assert smart["introspection_endpoint"] == INTROSPECT_URL
    assert smart["grant_types_supported"] == ["client_credentials"]
    assert set(smart["token_endpoint_auth_methods_supported"]) == {
        "private_key_jwt",
        "client_secret_basic",
        "client_secret_post",
    }
    assert set(smart["capabilities"]) == {
        "client-confidential-asymmetric",
        "client-confidential-symmetric",
        "permission-v1",
        "permission-v2",
    }
    assert all(scope.startswith("system/") for scope in smart["scopes_supported"])
    # No authorization endpoint is served: nothing that belongs to one is announced.
    for absent in (
        "authorization_endpoint",
        "response_types_supported",
        "code_challenge_methods_supported",
    ):
        assert absent not in smart
    security = (await api.get("/metadata")).json()["rest"][0]["security"]
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris == {"token": TOKEN_URL, "introspect": INTROSPECT_URL}
