"""Long values in indexed elements are stored whole and found exactly, on both databases.

Each element here was once held in a column of fixed length: PostgreSQL refused a longer
value (a 500), and the index cut some short, so a search could not tell two long values apart.
The lengths are the issue's (just over each old column) and one over PostgreSQL's limit on an
index row; each search must find the value and must not find a twin differing in its last
character only, beyond the indexed head. The default ``search_max_value_length`` admits
searches as long as the values.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

FHIR = {"Content-Type": "application/fhir+json"}
SYSTEM = "http://example.org/ids"
OTHER_SERVER = "http://other.example/fhir/"


def text(length: int) -> str:
    """Text that does not repeat (PostgreSQL would compress a repeated one under its limit)."""
    digests = (hashlib.sha256(str(i).encode()).hexdigest() for i in range(length // 64 + 1))
    return "".join(digests)[:length]


def twin(value: str) -> str:
    """The same value but for its last character."""
    return value[:-1] + ("0" if value[-1] != "0" else "1")


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/{body['resourceType']}", json=body, headers=FHIR)
    assert response.status_code == 201, response.text[:500]
    stored: dict[str, Any] = response.json()
    read = await client.get(f"/{body['resourceType']}/{stored['id']}")
    assert read.status_code == 200
    assert read.json() == stored
    return stored


async def found(client: httpx.AsyncClient, resource_type: str, **params: str) -> set[str]:
    response = await client.get(f"/{resource_type}", params=params)
    assert response.status_code == 200, response.text[:500]
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


@pytest.mark.parametrize("length", [300, 3_000])
async def test_a_long_identifier_system_is_stored_whole_and_found(
    client: httpx.AsyncClient, length: int
) -> None:
    system = "http://example.org/" + text(length)
    body = {"resourceType": "Patient", "identifier": [{"system": system, "value": "v1"}]}
    patient = await create(client, body)
    assert patient["identifier"][0]["system"] == system
    assert await found(client, "Patient", identifier=f"{system}|v1") == {patient["id"]}
    assert await found(client, "Patient", identifier=f"{system}|") == {patient["id"]}
    assert await found(client, "Patient", identifier=f"{twin(system)}|v1") == set()
    assert await found(client, "Patient", identifier=f"{twin(system)}|") == set()


@pytest.mark.parametrize("length", [1_100, 3_000])
async def test_a_long_identifier_value_is_stored_whole_and_found(
    client: httpx.AsyncClient, length: int
) -> None:
    value = text(length)
    body = {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": value}]}
    patient = await create(client, body)
    assert patient["identifier"][0]["value"] == value
    assert await found(client, "Patient", identifier=f"{SYSTEM}|{value}") == {patient["id"]}
    assert await found(client, "Patient", identifier=value) == {patient["id"]}
    assert await found(client, "Patient", identifier=f"{SYSTEM}|{twin(value)}") == set()
    assert await found(client, "Patient", identifier=twin(value)) == set()
    # $accountable names the person by the identifier as by the Patient's reference
    by_identifier = await client.get(
        "/CareTeam/$accountable", params={"patient": f"{SYSTEM}|{value}"}
    )
    by_reference = await client.get(
        "/CareTeam/$accountable", params={"patient": f"Patient/{patient['id']}"}
    )
    assert by_identifier.status_code == by_reference.status_code == 200
    assert by_identifier.json() == by_reference.json()


@pytest.mark.parametrize("length", [600, 3_000])
async def test_a_long_name_is_stored_whole_and_found_by_prefix_exactly_and_within(
    client: httpx.AsyncClient, length: int
) -> None:
    family = "Fam" + text(length)
    patient = await create(client, {"resourceType": "Patient", "name": [{"family": family}]})
    assert patient["name"][0]["family"] == family
    me = {patient["id"]}
    assert await found(client, "Patient", name="fam" + family[3:20]) == me
    assert await found(client, "Patient", name=family.lower()) == me
    assert await found(client, "Patient", family=family) == me
    assert await found(client, "Patient", name=twin(family)) == set()
    assert await found(client, "Patient", **{"name:exact": family}) == me
    assert await found(client, "Patient", **{"name:exact": family.lower()}) == set()
    assert await found(client, "Patient", **{"name:exact": twin(family)}) == set()
    assert await found(client, "Patient", **{"name:contains": family[-30:]}) == me
    assert await found(client, "Patient", **{"name:contains": twin(family)[-30:]}) == set()


@pytest.mark.parametrize("length", [300, 3_000])
async def test_a_care_team_subject_named_by_a_long_identifier_is_found(
    client: httpx.AsyncClient, length: int
) -> None:
    value = text(length)
    member = {"identifier": {"system": SYSTEM, "value": "worker-1"}}
    team = await create(
        client,
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": {"identifier": {"system": SYSTEM, "value": value}},
            "participant": [{"member": member}],
        },
    )
    assert team["subject"]["identifier"]["value"] == value
    me = {team["id"]}
    assert await found(client, "CareTeam", **{"subject:identifier": f"{SYSTEM}|{value}"}) == me
    assert await found(client, "CareTeam", **{"patient:identifier": value}) == me
    twin_key = f"{SYSTEM}|{twin(value)}"
    assert await found(client, "CareTeam", **{"subject:identifier": twin_key}) == set()
    # the keyworking projection knows the person by the long identifier, and not its twin
    answer = await client.get("/CareTeam/$accountable", params={"patient": f"{SYSTEM}|{value}"})
    assert answer.status_code == 200, answer.text[:500]
    assert value in answer.text
    unknown = await client.get("/CareTeam/$accountable", params={"patient": twin_key})
    assert unknown.status_code == 404


@pytest.mark.parametrize("length", [520, 3_000])
async def test_a_long_member_reference_is_stored_whole_and_found(
    client: httpx.AsyncClient, length: int
) -> None:
    reference = OTHER_SERVER + "Practitioner/" + text(length)
    long_identifier = text(length)
    participants = [
        {"member": {"reference": reference, "display": "Dr " + text(length)}},
        {"member": {"identifier": {"system": SYSTEM, "value": long_identifier}}},
    ]
    team = await create(
        client,
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": {"identifier": {"system": SYSTEM, "value": "person-1"}},
            "participant": participants,
        },
    )
    assert team["participant"] == participants
    me = {team["id"]}
    assert await found(client, "CareTeam", participant=reference) == me
    assert await found(client, "CareTeam", participant=twin(reference)) == set()
    by_identifier = {"participant:identifier": f"{SYSTEM}|{long_identifier}"}
    assert await found(client, "CareTeam", **by_identifier) == me
    by_twin = {"participant:identifier": f"{SYSTEM}|{twin(long_identifier)}"}
    assert await found(client, "CareTeam", **by_twin) == set()


@pytest.mark.parametrize("length", [300, 3_000])
async def test_a_long_code_and_its_text_are_found(client: httpx.AsyncClient, length: int) -> None:
    code, shown = text(length), "Team " + text(length)
    category = {"coding": [{"system": SYSTEM, "code": code}], "text": shown}
    team = await create(
        client,
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": {"identifier": {"system": SYSTEM, "value": "person-1"}},
            "category": [category],
        },
    )
    me = {team["id"]}
    assert await found(client, "CareTeam", category=f"{SYSTEM}|{code}") == me
    assert await found(client, "CareTeam", category=code) == me
    assert await found(client, "CareTeam", category=twin(code)) == set()
    assert await found(client, "CareTeam", **{"category:text": shown.lower()}) == me
    assert await found(client, "CareTeam", **{"category:text": shown[:12]}) == me
    assert await found(client, "CareTeam", **{"category:text": twin(shown)}) == set()


async def test_a_care_plan_with_many_unperformed_activities_is_stored(
    client: httpx.AsyncClient,
) -> None:
    activities = [{"detail": {"status": "scheduled"}}] * 400
    plan = await create(
        client,
        {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": {"identifier": {"system": SYSTEM, "value": "person-1"}},
            "activity": activities,
        },
    )
    assert len(plan["activity"]) == 400
