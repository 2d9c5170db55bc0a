"""Transaction Bundles write their plain creates in batches: same answers, same stored state.

The batched path (``BundleProcessor`` gathering creates for ``Interactions.create_all``) must
be indistinguishable from writing entry by entry: references between entries resolve, the
keyworking projection and Provenance are written, a refusal anywhere leaves nothing behind
and names the entry at fault. The last test guards the point of it all: a bundle costs a
handful of statements, not several per entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from tests.keyworking_world import NHS, accountable, build, care_team, participant, parts

FHIR = {"Content-Type": "application/fhir+json"}
NEW_NHS_NUMBERS = ("9434765919", "9434765870", "9434765900")  # valid modulus-11 numbers
LOOKALIKE = 'First, not {"reference":"urn:uuid:p"}'
StateFn = Callable[[], Awaitable[dict[str, int]]]


def _bundle(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _post(full_url: str, resource: dict[str, Any], if_none_exist: str | None = None) -> dict:
    request: dict[str, Any] = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    return {"fullUrl": full_url, "resource": resource, "request": request}


def _put(url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": url}}


def _person(index: int) -> list[dict[str, Any]]:
    """A Patient, their CareTeam (GP accountable, a key worker) and their CarePlan, linked
    by urn:uuid as an integration engine sends them (the Patient conditional on NHS number)."""
    number = NEW_NHS_NUMBERS[index]
    patient, team, plan = (f"urn:uuid:00000000-0000-4000-8000-00000000{index}{k}" for k in "123")
    return [
        _post(
            patient,
            {
                "resourceType": "Patient",
                "identifier": [{"system": NHS, "value": number}],
                "name": [{"family": f"Person{index}"}],
            },
            if_none_exist=f"identifier={NHS}|{number}",
        ),
        _post(
            team,
            {
                **care_team(
                    [
                        participant("accountable-professional", "PractitionerRole/r-gp"),
                        participant("keyworker", "PractitionerRole/r-kw"),
                    ]
                ),
                "subject": {"reference": patient},
            },
        ),
        _post(
            plan,
            {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "subject": {"reference": patient},
                "careTeam": [{"reference": team}],
                "activity": [
                    {"detail": {"status": "scheduled", "description": "Review"}},
                ],
            },
        ),
    ]


async def _send(client: httpx.AsyncClient, bundle: dict[str, Any]) -> httpx.Response:
    return await client.post("", json=bundle, headers=FHIR)


def _id(entry: dict[str, Any]) -> str:
    return str(entry["response"]["location"].split("/")[1])


async def test_a_batched_bundle_is_answered_projected_and_provenanced(
    client: httpx.AsyncClient,
) -> None:
    await build(client)
    organization = {"resourceType": "Organization", "name": "Created by PUT"}
    bundle = _bundle(
        *_person(0), *_person(1), _put("Organization/org-new", {**organization, "id": "org-new"})
    )
    response = await _send(client, bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created"] * 7
    for entry in entries:
        assert entry["response"]["etag"] == 'W/"1"'
        assert entry["response"]["location"].endswith("/_history/1")
        assert entry["response"]["lastModified"]
    assert entries[6]["response"]["location"] == "Organization/org-new/_history/1"
    history = (await client.get("/Organization/org-new/_history")).json()
    assert history["entry"][0]["request"]["method"] == "PUT"

    for person in (0, 1):
        patient, team, plan = (_id(e) for e in entries[3 * person : 3 * person + 3])
        stored_plan = (await client.get(f"/CarePlan/{plan}")).json()
        assert stored_plan["subject"]["reference"] == f"Patient/{patient}"
        assert stored_plan["careTeam"][0]["reference"] == f"CareTeam/{team}"
        answer = await accountable(client, f"{NHS}|{NEW_NHS_NUMBERS[person]}", "2026-03-01")
        (gp,) = parts(answer, "accountable")
        assert gp["member"]["reference"] == "PractitionerRole/r-gp"
        assert gp["careTeam"]["reference"] == f"CareTeam/{team}"
        for target in (f"CareTeam/{team}", f"CarePlan/{plan}"):
            found = (await client.get("/Provenance", params={"target": target})).json()
            (provenance,) = (e["resource"] for e in found["entry"])
            assert provenance["target"][0]["reference"] == f"{target}/_history/1"
            assert provenance["activity"]["coding"][0]["code"] == "CREATE"
        found = (await client.get("/CarePlan", params={"patient": f"Patient/{patient}"})).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [plan]

    # If-None-Exist looked up together: the known Patients are found, the new one created.
    again = _bundle(_person(0)[0], _person(2)[0], _person(1)[0])
    answered = (await _send(client, again)).json()["entry"]
    statuses = [e["response"]["status"] for e in answered]
    assert statuses == ["200 OK", "201 Created", "200 OK"]
    assert answered[0]["resource"]["id"] == _id(entries[0])
    assert answered[2]["resource"]["id"] == _id(entries[3])


async def test_a_refusal_late_in_a_batch_writes_nothing_and_names_its_entry(
    client: httpx.AsyncClient, db_state: StateFn
) -> None:
    await build(client)
    rival = care_team(
        [participant("accountable-professional", "PractitionerRole/r-gp2")],
        patient="Patient/pat-1",
    )
    stored_rival = await client.put("/CareTeam/rival", json={**rival, "id": "rival"})
    assert stored_rival.status_code == 201
    before = await db_state()
    # Entry 4 gives pat-1 a second accountable GP: only the stored rival team shows it.
    clash = care_team(
        [participant("accountable-professional", "PractitionerRole/r-gp")],
        patient="Patient/pat-1",
    )
    response = await _send(client, _bundle(*_person(0), _post("urn:uuid:clash", clash)))
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    assert "Bundle.entry[3]" in issue["diagnostics"]
    assert issue["expression"] == ["Bundle.entry[3].resource.participant[0]"]
    assert await db_state() == before

    unresolved = _person(1)
    unresolved[2]["resource"]["author"] = {"reference": "PractitionerRole/nobody"}
    response = await _send(client, _bundle(*_person(0), *unresolved))
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[5].resource.author"]
    assert await db_state() == before


async def test_writes_that_depend_on_earlier_entries_see_them(client: httpx.AsyncClient) -> None:
    await build(client)
    number = NEW_NHS_NUMBERS[2]
    patient = {"resourceType": "Patient", "identifier": [{"system": NHS, "value": number}]}
    team = care_team([participant("keyworker", "PractitionerRole/r-kw")])
    team["subject"] = {"reference": f"Patient?identifier={NHS}|{number}"}
    twice = {"resourceType": "Organization", "id": "twice"}
    response = await _send(
        client,
        _bundle(
            _post("urn:uuid:p", patient),
            _post("urn:uuid:t", team),
            # Text that looks like a reference to a bundle entry stays text.
            _put("Organization/twice", {**twice, "name": LOOKALIKE}),
            _put("Organization/twice", {**twice, "name": "Second"}),
        ),
    )
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    statuses = [e["response"]["status"] for e in entries]
    assert statuses == ["201 Created", "201 Created", "201 Created", "200 OK"]
    stored_team = (await client.get(f"/CareTeam/{_id(entries[1])}")).json()
    assert stored_team["subject"]["reference"] == f"Patient/{_id(entries[0])}"
    twice = (await client.get("/Organization/twice")).json()
    assert (twice["name"], twice["meta"]["versionId"]) == ("Second", "2")
    first = (await client.get("/Organization/twice/_history/1")).json()
    assert first["name"] == LOOKALIKE


@contextmanager
def _statements(app_state: Any) -> Iterator[list[str]]:
    """The SQL statements the app runs while the block runs."""
    seen: list[str] = []
    engine = app_state.interactions.database.engine.sync_engine

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_bundle_of_creates_costs_statements_per_table_not_per_entry(
    client: httpx.AsyncClient, app_state: Any
) -> None:
    await build(client)
    counts = []
    for people in ([0], [1, 2]):
        with _statements(app_state) as seen:
            bundle = _bundle(*(entry for person in people for entry in _person(person)))
            response = await _send(client, bundle)
        assert response.status_code == 200, response.text
        counts.append(len(seen))
    # Entry by entry, each person cost over thirty statements; batched, the second bundle
    # (twice the entries) costs what the first did.
    assert counts[0] == counts[1] <= 40, counts
