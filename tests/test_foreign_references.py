"""Other systems' data is accepted as they send it.

A CareTeam or CarePlan from an EHR points at Encounters, Conditions, Goals, Locations and
the like, which this server does not host: such references are kept as sent (and found by
the reference search parameters), while a reference to a hosted type must still resolve. A
participant whose role is a profession, another system's code or nothing at all is a plain
team member with no keyworking duty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from service.placeholders import TAG
from tests.keyworking_world import (
    SCT,
    accountable,
    build,
    care_team,
    gap_codes,
    ok,
    participant,
    parts,
    put,
)

FHIR = {"Content-Type": "application/fhir+json"}
DbState = Callable[[], Awaitable[dict[str, int]]]
MEDICAL_PRACTITIONER = {"system": SCT, "code": "158965000", "display": "Medical practitioner"}
LOCAL_ROLE = {"system": "https://ehr.example.org/CodeSystem/team-role", "code": "DOC1"}


def _ref(reference: str) -> dict[str, str]:
    return {"reference": reference}


# Per resource type: a body naming records of types not hosted here, and the searches by
# them that find it.
FOREIGN: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "CareTeam": (
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": _ref("Patient/pat-1"),
            "encounter": _ref("Encounter/enc-1"),
            "reasonReference": [_ref("Condition/cond-1")],
            "participant": [
                {"member": _ref("Practitioner/p-gp"), "onBehalfOf": _ref("Organization/org-gp")}
            ],
        },
        ("encounter=Encounter/enc-1",),
    ),
    "CarePlan": (
        {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": _ref("Patient/pat-1"),
            "encounter": _ref("Encounter/enc-1"),
            "addresses": [_ref("Condition/cond-1")],
            "goal": [_ref("Goal/goal-1")],
            "supportingInfo": [_ref("Observation/obs-1")],
            "activity": [
                {
                    "outcomeReference": [_ref("Observation/obs-2")],
                    "detail": {
                        "status": "scheduled",
                        "location": _ref("Location/loc-1"),
                        "performer": [_ref("HealthcareService/hs-1")],
                    },
                }
            ],
        },
        (
            "performer=HealthcareService/hs-1",
            "encounter=Encounter/enc-1",
            "condition=Condition/cond-1",
            "goal=Goal/goal-1",
        ),
    ),
    "PractitionerRole": (
        {
            "resourceType": "PractitionerRole",
            "practitioner": _ref("Practitioner/p-gp"),
            "location": [_ref("Location/loc-1")],
            "healthcareService": [_ref("HealthcareService/hs-1")],
            "endpoint": [_ref("Endpoint/ep-1")],
        },
        ("location=Location/loc-1", "service=HealthcareService/hs-1", "endpoint=Endpoint/ep-1"),
    ),
    "Organization": (
        {"resourceType": "Organization", "name": "Ward 4", "endpoint": [_ref("Endpoint/ep-1")]},
        ("endpoint=Endpoint/ep-1",),
    ),
}


def _without_server_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("meta", "id")}


@pytest.mark.parametrize("resource_type", list(FOREIGN))
async def test_references_to_types_not_hosted_are_kept_as_sent_and_searchable(
    client: httpx.AsyncClient, resource_type: str
) -> None:
    await build(client)
    body, queries = FOREIGN[resource_type]
    created = await client.post(f"/{resource_type}", json=body, headers=FHIR)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    read = await client.get(f"/{resource_type}/{rid}")
    assert read.status_code == 200
    assert _without_server_meta(read.json()) == body
    for query in queries:
        found = await client.get(f"/{resource_type}?{query}")
        assert found.status_code == 200, found.text
        assert [e["resource"]["id"] for e in found.json().get("entry", [])] == [rid], query


async def test_a_reference_search_by_a_foreign_type_finds_only_its_record(
    client: httpx.AsyncClient,
) -> None:
    await build(client)
    team = FOREIGN["CareTeam"][0]
    await ok(client, team, "ct-1")
    await ok(client, {**team, "encounter": _ref("Encounter/enc-2")}, "ct-2")
    for query, expected in (
        ("encounter=Encounter/enc-2", ["ct-2"]),
        ("encounter=enc-1", ["ct-1"]),
        ("encounter:Encounter=enc-1", ["ct-1"]),
        ("encounter=Encounter/enc-3", []),
    ):
        found = await client.get(f"/CareTeam?{query}")
        assert found.status_code == 200, found.text
        assert [e["resource"]["id"] for e in found.json().get("entry", [])] == expected, query


async def test_a_missing_hosted_target_is_still_422_beside_foreign_ones(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    await build(client)
    body = {**FOREIGN["CareTeam"][0], "subject": _ref("Patient/nobody")}
    before = await db_state()
    response = await client.post("/CareTeam", json=body, headers=FHIR)
    assert response.status_code == 422, response.text
    issues = response.json()["issue"]
    assert [(i["code"], i["expression"]) for i in issues] == [("not-found", ["CareTeam.subject"])]
    assert "Patient/nobody" in issues[0]["diagnostics"]
    assert await db_state() == before


async def test_a_reference_to_no_r4_type_is_422_at_its_element(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    await build(client)
    body = {**FOREIGN["CarePlan"][0], "supportingInfo": [_ref("Spaceship/ss-1")]}
    before = await db_state()
    response = await client.post("/CarePlan", json=body, headers=FHIR)
    assert response.status_code == 422, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["CarePlan.supportingInfo[0]"]
    assert "not an R4 resource type" in issue["diagnostics"]
    assert await db_state() == before


async def test_a_transaction_keeps_foreign_references_and_refuses_conditional_ones(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    await build(client)

    def transaction(encounter: str) -> dict[str, Any]:
        team = {**FOREIGN["CareTeam"][0], "encounter": _ref(encounter)}
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": team, "request": {"method": "POST", "url": "CareTeam"}}],
        }

    written = await client.post("", json=transaction("Encounter/enc-1"), headers=FHIR)
    assert written.status_code == 200, written.text
    location = written.json()["entry"][0]["response"]["location"]
    stored = (await client.get("/" + location.split("/_history")[0])).json()
    assert stored["encounter"] == _ref("Encounter/enc-1")

    before = await db_state()
    conditional = "Encounter?identifier=https://ehr.example.org/visit|77"
    refused = await client.post("", json=transaction(conditional), headers=FHIR)
    assert refused.status_code == 422, refused.text
    (issue,) = refused.json()["issue"]
    assert conditional in issue["diagnostics"]
    assert "Encounter is not hosted here" in issue["diagnostics"]
    assert await db_state() == before


async def test_the_capability_statement_says_what_is_kept_as_sent(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/metadata")
    assert response.status_code == 200
    (rest,) = response.json()["rest"]
    assert "must resolve" in rest["documentation"]
    assert "kept as sent" in rest["documentation"]
    assert "plain team member with no keyworking duty" in rest["documentation"]


# -- participants with no keyworking role ----------------------------------------------------


def _member(member: str, *roles: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"member": _ref(member), "period": {"start": "2025-01-01"}}
    if roles:
        out["role"] = [{"coding": list(roles)}]
    return out


PLAIN_MEMBERS = {
    "profession": _member("PractitionerRole/r-gp", MEDICAL_PRACTITIONER),
    "local code": _member("PractitionerRole/r-kw", LOCAL_ROLE),
}


@pytest.mark.parametrize("kind", list(PLAIN_MEMBERS))
async def test_a_participant_without_a_keyworking_role_is_a_plain_member(
    client: httpx.AsyncClient, kind: str
) -> None:
    await build(client)
    team = care_team([PLAIN_MEMBERS[kind]])
    response = await put(client, team, "ct")
    assert response.status_code == 201, response.text
    assert response.json()["participant"] == team["participant"]
    answer = await accountable(client, "pat-1", "2026-03-01")
    for duty in ("accountable", "keyworker", "co-keyworker", "cover"):
        assert parts(answer, duty) == [], duty
    assert gap_codes(answer) == ["no-accountable-professional", "no-keyworker"]


async def test_plain_members_beside_duty_holders_change_no_answer(
    client: httpx.AsyncClient,
) -> None:
    """People coded as medical practitioners (or by a local code, or with no role) beside the
    accountable GP and the key worker hold no duty, and a team of them all is accepted."""
    await build(client)
    team = care_team(
        [
            participant("accountable-professional", "PractitionerRole/r-gp"),
            _member("PractitionerRole/r-gp2", MEDICAL_PRACTITIONER),
            participant("keyworker", "PractitionerRole/r-kw"),
            _member("PractitionerRole/r-kw2", LOCAL_ROLE, MEDICAL_PRACTITIONER),
            _member("PractitionerRole/r-cover"),
        ]
    )
    await ok(client, team, "ct")
    await ok(client, care_team([_member("PractitionerRole/r-cover", MEDICAL_PRACTITIONER)]), "ct2")
    answer = await accountable(client, "pat-1", "2026-03-01")
    assert [p["member"]["reference"] for p in parts(answer, "accountable")] == [
        "PractitionerRole/r-gp"
    ]
    assert [p["member"]["reference"] for p in parts(answer, "keyworker")] == [
        "PractitionerRole/r-kw"
    ]
    assert gap_codes(answer) == []
    found = await client.get(f"/CareTeam?role={SCT}|158965000")
    assert sorted(e["resource"]["id"] for e in found.json()["entry"]) == ["ct", "ct2"]


# -- placeholders (KEYWORKER_AUTO_CREATE_PLACEHOLDERS) ---------------------------------------


async def test_a_placeholder_is_created_in_the_write_and_replaced_by_the_target(
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    client = await app_factory(auto_create_placeholders=True)
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": _ref("Patient/later"),
        "participant": [{"member": _ref("Practitioner/pr-later")}],
    }
    created = await client.post("/CareTeam", json=team, headers=FHIR)
    assert created.status_code == 201, created.text
    for target in ("Patient/later", "Practitioner/pr-later"):
        read = await client.get(f"/{target}")
        assert read.status_code == 200, read.text
        assert read.json()["meta"]["tag"] == [TAG]
    patient = {"resourceType": "Patient", "id": "later", "name": [{"family": "Okafor"}]}
    replaced = await client.put("/Patient/later", json=patient, headers=FHIR)
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["meta"]["versionId"] == "2" and "tag" not in body["meta"]
    assert body["name"] == patient["name"]
    found = await client.get("/Patient?family=okafor")
    assert [e["resource"]["id"] for e in found.json()["entry"]] == ["later"]


async def test_placeholders_are_made_only_for_records_that_never_existed(
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]], db_state: DbState
) -> None:
    """A deleted target stays deleted and a Provenance is never made up: both are still 422,
    and the write that names them creates no placeholder for its other targets either."""
    client = await app_factory(auto_create_placeholders=True)
    await client.put("/Patient/gone", json={"resourceType": "Patient", "id": "gone"})
    assert (await client.delete("/Patient/gone")).status_code in (200, 204)
    before = await db_state()
    team = {
        "resourceType": "CareTeam",
        "subject": _ref("Patient/gone"),
        "participant": [{"member": _ref("Practitioner/pr-new")}],
    }
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": _ref("Patient/new"),
        "supportingInfo": [_ref("Provenance/none")],
    }
    for body, expression in (
        (team, "CareTeam.subject"),
        (plan, "CarePlan.supportingInfo[0]"),
    ):
        response = await client.post(f"/{body['resourceType']}", json=body, headers=FHIR)
        assert response.status_code == 422, response.text
        (issue,) = response.json()["issue"]
        assert (issue["code"], issue["expression"]) == ("not-found", [expression])
    assert await db_state() == before
    assert (await client.get("/Practitioner/pr-new")).status_code == 404
    assert (await client.get("/Patient/new")).status_code == 404
