"""Transaction and batch Bundles at the base: atomic, ordered, resolved, idempotent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

FHIR = {"Content-Type": "application/fhir+json"}
NHS = "https://fhir.nhs.uk/Id/nhs-number"
ROLE = "https://keyworker-fhir.org/fhir/CodeSystem/keyworking-role"
StateFn = Callable[[], Awaitable[dict[str, int]]]


def _bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _post(full_url: str, resource: dict[str, Any], if_none_exist: str | None = None) -> dict:
    request: dict[str, Any] = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    return {"fullUrl": full_url, "resource": resource, "request": request}


def _put(url: str, resource: dict[str, Any], full_url: str | None = None) -> dict:
    entry: dict[str, Any] = {"resource": resource, "request": {"method": "PUT", "url": url}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def _patient(nhs: str, family: str = "Okafor") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family}],
    }


def _team(subject: str, member: str | None = None) -> dict[str, Any]:
    team: dict[str, Any] = {
        "resourceType": "CareTeam",
        "status": "active",
        "identifier": [{"system": "https://example.org/teams", "value": f"team-{subject}"}],
        "subject": {"reference": subject},
    }
    if member:
        team["participant"] = [
            {
                "role": [{"coding": [{"system": ROLE, "code": "case-team-member"}]}],
                "member": {"reference": member},
            }
        ]
    return team


def _care_graph() -> dict[str, Any]:
    """A whole care team pushed at once, every reference between new resources a urn:uuid."""
    org = "urn:uuid:6f1c1f7e-0000-4000-8000-000000000001"
    doc = "urn:uuid:6f1c1f7e-0000-4000-8000-000000000002"
    role = "urn:uuid:6f1c1f7e-0000-4000-8000-000000000003"
    pat = "urn:uuid:6f1c1f7e-0000-4000-8000-000000000004"
    team = "urn:uuid:6f1c1f7e-0000-4000-8000-000000000005"
    plan = "urn:uuid:6f1c1f7e-0000-4000-8000-000000000006"
    return _bundle(
        "transaction",
        # The CarePlan comes first: references resolve across the whole bundle.
        _post(
            plan,
            {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "subject": {"reference": pat},
                "careTeam": [{"reference": team}],
                "activity": [
                    {"detail": {"status": "scheduled", "performer": [{"reference": role}]}}
                ],
            },
        ),
        _post(org, {"resourceType": "Organization", "name": "Leeds Adult Social Care"}),
        _post(doc, {"resourceType": "Practitioner", "name": [{"family": "Mensah"}]}),
        _post(
            role,
            {
                "resourceType": "PractitionerRole",
                "practitioner": {"reference": doc},
                "organization": {"reference": org},
            },
        ),
        _post(pat, _patient("9434765919")),
        _post(team, _team(pat, role)),
    )


async def _send(
    client: httpx.AsyncClient, bundle: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post("", json=bundle, headers={**FHIR, **headers})


async def test_urn_uuid_graph_is_written_whole_with_references_rewritten(
    client: httpx.AsyncClient,
) -> None:
    response = await _send(client, _care_graph())
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in bundle["entry"]]
    assert statuses == ["201 Created"] * 6
    plan, org, _, role, patient, team = (e["resource"] for e in bundle["entry"])
    assert all(e["response"]["etag"] == 'W/"1"' for e in bundle["entry"])
    assert bundle["entry"][0]["response"]["location"].startswith(f"CarePlan/{plan['id']}/")
    assert plan["subject"]["reference"] == f"Patient/{patient['id']}"
    assert plan["careTeam"][0]["reference"] == f"CareTeam/{team['id']}"
    assert role["organization"]["reference"] == f"Organization/{org['id']}"
    stored = (await client.get(f"/CareTeam/{team['id']}")).json()
    assert stored["participant"][0]["member"]["reference"] == f"PractitionerRole/{role['id']}"
    assert "urn:uuid" not in (await client.get(f"/CarePlan/{plan['id']}")).text


async def test_a_failing_entry_in_the_middle_writes_nothing(
    client: httpx.AsyncClient, db_state: StateFn
) -> None:
    bundle = _care_graph()
    bundle["entry"][3]["resource"]["active"] = "perhaps"  # PractitionerRole.active: boolean
    before = await db_state()
    response = await _send(client, bundle)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert "Bundle.entry[3]" in issue["diagnostics"]
    assert issue["expression"] == ["Bundle.entry[3].resource.active"]
    assert await db_state() == before


async def test_a_broken_rule_late_in_the_bundle_rolls_back_earlier_writes(
    client: httpx.AsyncClient, db_state: StateFn
) -> None:
    before = await db_state()
    bundle = _bundle(
        "transaction",
        _post("urn:uuid:a", _patient("9434765919")),
        _post("urn:uuid:b", _team("Patient/nobody-by-this-id")),
    )
    response = await _send(client, bundle)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.subject"]
    assert await db_state() == before


async def test_conditional_references_resolve_to_the_one_match(client: httpx.AsyncClient) -> None:
    made = await client.post("/Patient", json=_patient("9434765919"), headers=FHIR)
    pid = made.json()["id"]
    bundle = _bundle(
        "transaction", _post("urn:uuid:t", _team(f"Patient?identifier={NHS}|9434765919"))
    )
    response = await _send(client, bundle)
    assert response.status_code == 200, response.text
    assert response.json()["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{pid}"

    none = _bundle(
        "transaction", _post("urn:uuid:t", _team(f"Patient?identifier={NHS}|0000000000"))
    )
    assert (await _send(client, none)).status_code == 422
    await client.post("/Patient", json=_patient("9434765919"), headers=FHIR)
    many = await _send(client, bundle)
    assert many.status_code == 412
    assert "Bundle.entry[0]" in many.json()["issue"][0]["diagnostics"]


async def test_processing_order_and_if_match(client: httpx.AsyncClient, db_state: StateFn) -> None:
    made = (await client.post("/Patient", json=_patient("9434765919"), headers=FHIR)).json()
    pid = made["id"]
    gone = (await client.post("/Patient", json=_patient("9434765870"), headers=FHIR)).json()
    bundle = _bundle(
        "transaction",
        # Listed GET first, PUT second, DELETE last: R4 runs DELETE, POST, PUT, then GET.
        {"request": {"method": "GET", "url": f"Patient/{pid}"}},
        _put(f"Patient/{pid}", {**_patient("9434765919", "Okafor-Ade"), "id": pid}),
        {"request": {"method": "DELETE", "url": f"Patient/{gone['id']}"}},
    )
    response = await _send(client, bundle)
    assert response.status_code == 200, response.text
    read, put, delete = response.json()["entry"]
    assert read["resource"]["name"][0]["family"] == "Okafor-Ade"  # GET saw the PUT
    assert put["response"]["status"] == "200 OK"
    assert delete["response"]["status"] == "204 No Content"
    assert (await client.get(f"/Patient/{gone['id']}")).status_code == 410

    stale = _put(f"Patient/{pid}", {**_patient("9434765919", "Stale"), "id": pid})
    stale["request"]["ifMatch"] = 'W/"1"'
    before = await db_state()
    refused = await _send(client, _bundle("transaction", stale))
    assert refused.status_code == 412
    assert await db_state() == before


async def test_resending_a_conditional_bundle_changes_nothing(
    client: httpx.AsyncClient, db_state: StateFn
) -> None:
    query = f"identifier={NHS}|9434765919"
    bundle = _bundle(
        "transaction",
        _post("urn:uuid:p", _patient("9434765919"), if_none_exist=query),
        _put(
            "CareTeam?identifier=https://example.org/teams|team-urn:uuid:p",
            _team("urn:uuid:p"),
        ),
    )
    first = await _send(client, bundle)
    assert first.status_code == 200, first.text
    assert [e["response"]["status"] for e in first.json()["entry"]] == ["201 Created"] * 2
    before = await db_state()
    second = await _send(client, bundle)
    assert second.status_code == 200, second.text
    assert [e["response"]["status"] for e in second.json()["entry"]] == ["200 OK"] * 2
    assert [e["response"]["etag"] for e in second.json()["entry"]] == ['W/"1"', 'W/"1"']
    assert await db_state() == before


async def test_batch_entries_succeed_and_fail_on_their_own(client: httpx.AsyncClient) -> None:
    bundle = _bundle(
        "batch",
        _post("urn:uuid:a", _patient("9434765919")),
        _post("urn:uuid:b", {"resourceType": "Patient", "gender": "sometimes"}),
        {"request": {"method": "GET", "url": "Patient/not-there"}},
        {"request": {"method": "DELETE", "url": "Patient/not-there-either"}},
    )
    response = await _send(client, bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert response.json()["type"] == "batch-response"
    assert [e["response"]["status"] for e in entries] == ["201 Created", "400", "404", "404"]
    assert entries[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert entries[1]["response"]["outcome"]["issue"][0]["expression"] == [
        "Bundle.entry[1].resource.gender"
    ]
    created = entries[0]["resource"]["id"]
    assert (await client.get(f"/Patient/{created}")).status_code == 200


async def test_limits_and_malformed_bundles(
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]], db_state: StateFn
) -> None:
    small = await app_factory(max_bundle_entries=3)
    before = await db_state()
    four = _bundle(
        "transaction", *[_post(f"urn:uuid:{i}", _patient("9434765919")) for i in range(4)]
    )
    too_many = await _send(small, four)
    assert too_many.status_code == 413
    assert "limit is 3" in too_many.json()["issue"][0]["diagnostics"]
    tiny = await app_factory(max_body_bytes=200)
    assert (await _send(tiny, four)).status_code == 413
    cases = [
        ({"resourceType": "Patient"}, "resourceType"),
        ({"resourceType": "Bundle", "type": "collection"}, "Bundle.type"),
        (_bundle("transaction", {"resource": _patient("9434765919")}), "Bundle.entry[0].request"),
        (
            _bundle("transaction", {"request": {"method": "POST", "url": "Patient"}}),
            "Bundle.entry[0].resource",
        ),
        (
            _bundle("transaction", {"request": {"method": "GET", "url": "Nonsense/1"}}),
            "Bundle.entry[0].request.url",
        ),
        (
            _bundle("batch", {"request": {"method": "TRACE", "url": "Patient"}}),
            "Bundle.entry[0].request.method",
        ),
    ]
    for body, expression in cases:
        response = await _send(small, body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["issue"][0]["expression"] == [expression]
    assert await db_state() == before


async def test_a_thousand_entry_bundle(client: httpx.AsyncClient) -> None:
    entries = [
        _post(f"urn:uuid:00000000-0000-4000-8000-{i:012d}", _patient("9434765919", f"P{i}"))
        for i in range(1000)
    ]
    response = await _send(client, _bundle("transaction", *entries), Prefer="return=minimal")
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert len(body["entry"]) == 1000
    assert "resource" not in body["entry"][0]
    total = await client.get("/Patient?_summary=count")
    assert total.json()["total"] == 1000


async def test_concurrent_transactions_on_one_patient_leave_one_patient(
    client: httpx.AsyncClient,
) -> None:
    query = f"identifier={NHS}|9434765919"

    def bundle(family: str) -> dict[str, Any]:
        return _bundle(
            "transaction",
            _post("urn:uuid:p", _patient("9434765919", family), if_none_exist=query),
            _post("urn:uuid:t", _team("urn:uuid:p")),
        )

    responses = await asyncio.gather(*[_send(client, bundle(f"F{i}")) for i in range(4)])
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    patients = (await client.get(f"/Patient?{query}")).json()
    assert len(patients.get("entry", [])) == 1
    pid = patients["entry"][0]["resource"]["id"]
    teams = (await client.get(f"/CareTeam?subject=Patient/{pid}&_summary=count")).json()
    assert teams["total"] == 4


async def test_keyworking_rules_hold_across_the_whole_bundle(
    client: httpx.AsyncClient, db_state: StateFn
) -> None:
    def accountable_team(full_url: str, member: str) -> dict[str, Any]:
        team = _team("urn:uuid:pat", member)
        team["identifier"][0]["value"] = full_url
        team["participant"][0]["role"][0]["coding"][0]["code"] = "accountable-professional"
        team["participant"][0]["period"] = {"start": "2025-01-01"}
        return _post(full_url, team)

    gp = {"resourceType": "PractitionerRole", "active": True}
    before = await db_state()
    response = await _send(
        client,
        _bundle(
            "transaction",
            _post("urn:uuid:pat", _patient("9434765919")),
            _post("urn:uuid:gp1", gp),
            _post("urn:uuid:gp2", gp),
            accountable_team("urn:uuid:team1", "urn:uuid:gp1"),
            accountable_team("urn:uuid:team2", "urn:uuid:gp2"),
        ),
    )
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    assert "Bundle.entry[4]" in issue["diagnostics"]
    assert "accountable" in issue["diagnostics"]
    assert await db_state() == before


async def test_csv_import_over_http(client: httpx.AsyncClient, db_state: StateFn) -> None:
    from tests.test_assignment_import import BAD_ROWS, SAMPLE

    text = SAMPLE.read_text(encoding="utf-8")
    csv_headers = {"Content-Type": "text/csv"}
    done = await client.post("/$import-assignments", content=text, headers=csv_headers)
    assert done.status_code == 200, done.text
    assert done.json()["issue"][0]["diagnostics"].startswith("Imported 8 rows: 3 CareTeam created")
    before = await db_state()
    refused = await client.post(
        "/$import-assignments", content=text + BAD_ROWS, headers=csv_headers
    )
    assert refused.status_code == 422
    assert [i["diagnostics"][:7] for i in refused.json()["issue"]] == [
        "line 10",
        "line 11",
        "line 12",
    ]
    skipped = await client.post(
        "/$import-assignments?skipBadRows=true", content=text + BAD_ROWS, headers=csv_headers
    )
    assert skipped.status_code == 200
    assert [i["severity"] for i in skipped.json()["issue"]] == ["information"] + ["warning"] * 3
    assert await db_state() == before  # everything else was already there, unchanged
    wrong_type = await client.post("/$import-assignments", content=text, headers=FHIR)
    assert wrong_type.status_code == 415
    definition = await client.get("/OperationDefinition/import-assignments")
    assert definition.status_code == 200
    assert definition.json()["code"] == "import-assignments"
