"""The scopes a token gets: what was asked for and is registered, compared by meaning (wildcard
types, v1 and v2 spellings, narrower actions), the rest dropped; refused only when nothing
is left."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from service.auth.tokens import unverified_part
from tests.authkit import TOKEN_URL, bearer, register, secure_client

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]


async def _token(
    app_factory: AppFactory, database_url: str, registered: str, requested: str
) -> tuple[httpx.AsyncClient, httpx.Response]:
    api = await secure_client(app_factory)
    client_id, secret = await register(database_url, registered)
    assert secret is not None
    issued = await api.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "scope": requested},
        auth=(client_id, secret),
    )
    return api, issued


@pytest.mark.parametrize(
    ("registered", "requested", "granted"),
    [
        ("system/*.cruds", "system/CareTeam.rs", "system/CareTeam.rs"),
        ("system/*.cruds", "system/CareTeam.read", "system/CareTeam.read"),
        ("system/*.read", "system/CareTeam.rs", "system/CareTeam.rs"),
        ("system/*.*", "system/Patient.cruds system/*.s", "system/Patient.cruds system/*.s"),
        ("system/*.rs", "system/CareTeam.cruds", "system/CareTeam.rs"),
        ("system/*.write", "system/*.*", "system/*.cud"),
        (
            "system/CareTeam.rs system/Patient.cruds",
            "system/*.rs",
            "system/CareTeam.rs system/Patient.rs",
        ),
        ("system/*.rs system/CareTeam.cud", "system/CareTeam.cruds", "system/CareTeam.cruds"),
        (
            "system/*.rs",
            "openid fhirUser launch patient/*.rs user/Patient.rs system/CareTeam.rs",
            "system/CareTeam.rs",
        ),
        ("system/*.rs", "system/*.rs system/*.rs", "system/*.rs"),
        ("system/*.rs", "system/CareTeam.rs?category=a", "system/CareTeam.rs?category=a"),
        ("system/CareTeam.rs?category=a", "system/CareTeam.rs", "system/CareTeam.rs?category=a"),
    ],
    ids=[
        "wildcard-covers-a-type",
        "v1-read-within-v2",
        "v2-within-v1-read",
        "v1-star-covers-v2",
        "narrowed-to-registered-actions",
        "v1-write-within-star-as-v2",
        "wildcard-request-gets-registered-types",
        "two-registrations-merge",
        "ungrantable-dropped",
        "repeats-once",
        "asked-restriction-kept",
        "registered-restriction-applied",
    ],
)
async def test_granted_is_what_is_asked_and_registered(
    app_factory: AppFactory, database_url: str, registered: str, requested: str, granted: str
) -> None:
    _, issued = await _token(app_factory, database_url, registered, requested)
    assert issued.status_code == 200, issued.text
    assert issued.json()["scope"] == granted
    assert unverified_part(issued.json()["access_token"], 1)["scope"] == granted


async def test_a_token_for_one_type_from_a_wildcard_registration_reaches_that_type_only(
    app_factory: AppFactory, database_url: str
) -> None:
    api, issued = await _token(app_factory, database_url, "system/*.cruds", "system/CareTeam.rs")
    assert issued.status_code == 200, issued.text
    token = bearer(issued.json()["access_token"])
    searched = await api.get("/CareTeam", headers=token)
    assert searched.status_code == 200, searched.text
    assert searched.json()["resourceType"] == "Bundle"
    for refused in (
        await api.get("/Patient", headers=token),
        await api.post("/Patient", json={"resourceType": "Patient"}, headers=token),
    ):
        assert refused.status_code == 403, refused.text
        assert refused.json()["issue"][0]["code"] == "forbidden"


@pytest.mark.parametrize(
    "requested",
    ["system/Patient.rs", "patient/CareTeam.rs openid system/CareTeam.cud", "system/CareTeam.sr"],
    ids=["other-type", "other-context-or-actions", "malformed"],
)
async def test_nothing_grantable_is_invalid_scope(
    app_factory: AppFactory, database_url: str, requested: str
) -> None:
    _, issued = await _token(app_factory, database_url, "system/CareTeam.rs", requested)
    assert issued.status_code == 400, issued.text
    assert issued.json()["error"] == "invalid_scope"
    assert requested.split()[0] in issued.json()["error_description"]
    assert "access_token" not in issued.json()
