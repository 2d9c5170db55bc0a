"""``patient/`` scopes and SMART v2 query restrictions: another patient's records are 404 on
read and change (as unknown as records that do not exist), creating one is 403, and they are
simply absent from search, ``_include`` and ``_revinclude``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.authkit import bearer, mint, secure_client

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
CATEGORY = "http://loinc.org|LA27976-2"


def care_team(
    patient: str, member: str | None = None, category: str = "LA27976-2"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "CareTeam",
        "status": "active",
        "category": [{"coding": [{"system": "http://loinc.org", "code": category}]}],
        "subject": {"reference": f"Patient/{patient}"},
    }
    if member:
        body["participant"] = [{"member": {"reference": member}}]
    return body


async def _seeded(app_factory: AppFactory, database_url: str) -> httpx.AsyncClient:
    client = await secure_client(app_factory)
    admin = bearer(await mint(database_url, "system/*.cruds"))
    for patient in ("own", "other"):
        body = {"resourceType": "Patient", "id": patient, "name": [{"family": f"Family-{patient}"}]}
        assert (
            await client.put(f"/Patient/{patient}", json=body, headers=admin)
        ).status_code == 201
    teams = {
        "ct-own": care_team("own", member="Patient/other"),
        "ct-own-social": care_team("own", category="LA28865-6"),
        "ct-other": care_team("other", member="Patient/own"),
    }
    for team_id, body in teams.items():
        response = await client.put(
            f"/CareTeam/{team_id}", json={**body, "id": team_id}, headers=admin
        )
        assert response.status_code == 201, response.text
    return client


async def _as_patient(database_url: str, scope: str = "patient/*.cruds") -> dict[str, str]:
    return bearer(await mint(database_url, scope, patient="own"))


def _ids(bundle: httpx.Response) -> list[str]:
    assert bundle.status_code == 200, bundle.text
    return sorted(
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.json().get("entry", [])
        if e["resource"]["resourceType"] != "OperationOutcome"
    )


def _refused(response: httpx.Response, status: int = 403) -> None:
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "Family-" not in response.text and '"subject"' not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/CareTeam/ct-other",
        "/Patient/other",
        "/CareTeam/ct-other/_history/1",
        "/CareTeam/ct-other/_history",
    ],
)
async def test_cross_patient_read_is_404(
    app_factory: AppFactory, database_url: str, path: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _as_patient(database_url)
    _refused(await client.get(path, headers=headers), 404)
    own = path.replace("ct-other", "ct-own").replace("Patient/other", "Patient/own")
    assert (await client.get(own, headers=headers)).status_code == 200


async def test_cross_patient_search_shows_only_the_compartment(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _as_patient(database_url)
    assert _ids(await client.get("/CareTeam", headers=headers)) == [
        "CareTeam/ct-own",
        "CareTeam/ct-own-social",
    ]
    assert _ids(await client.get("/CareTeam?patient=Patient/other", headers=headers)) == []
    assert _ids(await client.get("/Patient", headers=headers)) == ["Patient/own"]
    assert _ids(await client.get("/Patient?_id=other", headers=headers)) == []


async def test_cross_patient_include_and_revinclude_are_absent(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _as_patient(database_url)
    included = await client.get("/CareTeam?_include=CareTeam:participant", headers=headers)
    assert "Patient/other" not in _ids(included)
    assert "Family-other" not in included.text
    revincluded = await client.get("/Patient?_revinclude=CareTeam:subject", headers=headers)
    assert _ids(revincluded) == ["CareTeam/ct-own", "CareTeam/ct-own-social", "Patient/own"]
    reverse = await client.get("/Patient?_revinclude=CareTeam:participant", headers=headers)
    assert "CareTeam/ct-other" not in _ids(reverse)


async def test_cross_patient_writes_are_refused_and_write_nothing(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _as_patient(database_url)
    moved = {**care_team("other"), "id": "ct-own"}
    for response in (
        await client.post("/CareTeam", json=care_team("other"), headers=headers),
        await client.put("/CareTeam/ct-own", json=moved, headers=headers),
        await client.patch(
            "/CareTeam/ct-own",
            json=[{"op": "replace", "path": "/subject/reference", "value": "Patient/other"}],
            headers={**headers, "Content-Type": "application/json-patch+json"},
        ),
    ):
        _refused(response)
    for response in (
        await client.put(
            "/CareTeam/ct-other",
            json={**care_team("other"), "id": "ct-other", "status": "inactive"},
            headers=headers,
        ),
        await client.delete("/CareTeam/ct-other", headers=headers),
    ):
        _refused(response, 404)
    admin = bearer(await mint(database_url, "system/*.rs"))
    other = (await client.get("/CareTeam/ct-other", headers=admin)).json()
    assert other["meta"]["versionId"] == "1" and other["status"] == "active"
    own = (await client.get("/CareTeam/ct-own", headers=admin)).json()
    assert own["subject"]["reference"] == "Patient/own" and own["meta"]["versionId"] == "1"
    created = await client.post("/CareTeam", json=care_team("own"), headers=headers)
    assert created.status_code == 201


@pytest.mark.parametrize(
    ("patient", "paths"),
    [("own", ("/CareTeam/_history", "/_history")), (None, ("/CareTeam/ct-own", "/CareTeam"))],
    ids=["history-cannot-be-filtered", "no-patient-claim-reaches-nothing"],
)
async def test_restricted_token_is_refused_what_it_cannot_be_confined_in(
    app_factory: AppFactory, database_url: str, patient: str | None, paths: tuple[str, ...]
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = bearer(await mint(database_url, "patient/*.rs", patient=patient))
    for path in paths:
        _refused(await client.get(path, headers=headers))


async def test_v2_query_restriction_limits_search_and_read(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _as_patient(database_url, f"patient/CareTeam.rs?category={CATEGORY}")
    assert _ids(await client.get("/CareTeam", headers=headers)) == ["CareTeam/ct-own"]
    assert (await client.get("/CareTeam/ct-own", headers=headers)).status_code == 200
    _refused(await client.get("/CareTeam/ct-own-social", headers=headers), 404)
    system = bearer(await mint(database_url, f"system/CareTeam.rs?category={CATEGORY}"))
    assert _ids(await client.get("/CareTeam", headers=system)) == [
        "CareTeam/ct-other",
        "CareTeam/ct-own",
    ]


def _transaction(*entries: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": body, "request": {"method": "POST", "url": resource_type}}
            for resource_type, body in entries
        ],
    }


@pytest.mark.parametrize(
    ("scope", "patient", "out_of_scope"),
    [
        ("patient/*.cruds", "own", ("CareTeam", care_team("other"))),
        ("system/CareTeam.cruds", None, ("Patient", {"resourceType": "Patient"})),
    ],
    ids=["other-patients-record", "type-not-granted"],
)
async def test_transaction_with_an_out_of_scope_entry_is_refused_whole(
    app_factory: AppFactory,
    database_url: str,
    scope: str,
    patient: str | None,
    out_of_scope: tuple[str, dict[str, Any]],
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = bearer(await mint(database_url, scope, patient=patient))
    bundle = _transaction(("CareTeam", care_team("own")), out_of_scope)
    _refused(await client.post("", json=bundle, headers=headers))
    admin = bearer(await mint(database_url, "system/*.rs"))
    assert len(_ids(await client.get("/CareTeam", headers=admin))) == 3
    assert len(_ids(await client.get("/Patient", headers=admin))) == 2


async def test_chained_and_has_searches_stay_in_the_compartment(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _as_patient(database_url)
    chained = await client.get("/CareTeam?subject:Patient.name=Family-other", headers=headers)
    assert _ids(chained) == []
    reverse_chained = await client.get(
        "/Patient?_has:CareTeam:subject:status=active", headers=headers
    )
    assert _ids(reverse_chained) == ["Patient/own"]
    teams_only = bearer(await mint(database_url, "system/CareTeam.rs"))
    # A chain through a type the token does not cover matches nothing: no existence oracle.
    probe = await client.get("/CareTeam?subject:Patient.name=Family-other", headers=teams_only)
    assert _ids(probe) == []
