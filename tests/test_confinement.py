"""A token's reach applies in one place: Bundle entries answer as plain requests do, and a
``patient/`` token's compartment confines conditional matches, ``_has``, the audit journal
and writes of shared records; what lies outside it is as absent (404) as what does not exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.authkit import bearer, mint, secure_client

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
NHS = "https://fhir.nhs.uk/Id/nhs-number"
TEAMS = "https://example.org/teams"
# Valid NHS numbers (modulus 11): own's, the other patient's, and one nobody has.
NHS_OWN, NHS_OTHER, NHS_NOBODY = "9434765919", "9434765870", "9000000009"


def _team(patient: str, identifier: str) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "status": "active",
        "identifier": [{"system": TEAMS, "value": identifier}],
        "subject": {"reference": f"Patient/{patient}"},
    }


def _patient(patient: str, nhs: str, born: str, gp: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient,
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": f"Family-{patient}"}],
        "birthDate": born,
        "generalPractitioner": [{"reference": f"PractitionerRole/{gp}"}],
    }


async def _seeded(app_factory: AppFactory, database_url: str) -> httpx.AsyncClient:
    client = await secure_client(app_factory)
    admin = await _admin(database_url)
    writes = [
        ("Practitioner/dr", {"resourceType": "Practitioner", "name": [{"family": "Doctor"}]}),
        *(
            (
                f"PractitionerRole/{gp}",
                {
                    "resourceType": "PractitionerRole",
                    "practitioner": {"reference": "Practitioner/dr"},
                    "telecom": [{"system": "phone", "value": "0100"}],
                },
            )
            for gp in ("gp-own", "gp-other")
        ),
        ("Patient/own", _patient("own", NHS_OWN, "2005-01-01", "gp-own")),
        ("Patient/other", _patient("other", NHS_OTHER, "1990-01-01", "gp-other")),
        ("CareTeam/ct-own", _team("own", "team-own")),
        ("CareTeam/ct-other", _team("other", "team-other")),
    ]
    for path, body in writes:
        rid = path.partition("/")[2]
        response = await client.put(f"/{path}", json={**body, "id": rid}, headers=admin)
        assert response.status_code == 201, response.text
    return client


async def _admin(database_url: str) -> dict[str, str]:
    return bearer(await mint(database_url, "system/*.cruds"))


async def _own(database_url: str, scope: str = "patient/*.cruds") -> dict[str, str]:
    return bearer(await mint(database_url, scope, patient="own"))


def _outcome(response: httpx.Response, status: int, code: str, expression: str | None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["code"] == code, body
    if expression is not None:
        assert issue["expression"] == [expression], body


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in response.json().get("entry", [])
        if e["search"]["mode"] != "outcome"
    )


async def _count(client: httpx.AsyncClient, database_url: str, path: str) -> int:
    admin = bearer(await mint(database_url, "system/*.rs"))
    response = await client.get(f"{path}?_summary=count", headers=admin)
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


# -- Bundle entries answer as plain requests ------------------------------------------------


def _provenance() -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [{"reference": "CareTeam/ct-own"}],
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"who": {"display": "forger"}}],
    }


async def _provenance_id(client: httpx.AsyncClient, database_url: str) -> str:
    admin = bearer(await mint(database_url, "system/*.rs"))
    found = await client.get("/Provenance?target=CareTeam/ct-own", headers=admin)
    return str(found.json()["entry"][0]["resource"]["id"])


@pytest.mark.parametrize(
    ("method", "url_of", "body"),
    [
        ("POST", lambda _: "Provenance", _provenance()),
        ("PUT", lambda pid: f"Provenance/{pid}", None),
        ("DELETE", lambda pid: f"Provenance/{pid}", None),
        ("POST", lambda _: "AuditEvent", {"resourceType": "AuditEvent"}),
        ("PUT", lambda _: "AuditEvent/forged", {"resourceType": "AuditEvent", "id": "forged"}),
        ("DELETE", lambda _: "AuditEvent/any", None),
        ("PUT", lambda _: "Provenance?target=CareTeam/ct-own", _provenance()),
        ("DELETE", lambda _: "Provenance?target=CareTeam/ct-own", None),
    ],
    ids=[
        "create-provenance",
        "update-provenance",
        "delete-provenance",
        "create-audit",
        "update-audit",
        "delete-audit",
        "conditional-update-provenance",
        "conditional-delete-provenance",
    ],
)
async def test_server_written_types_are_405_inside_bundles_as_outside(
    app_factory: AppFactory,
    database_url: str,
    method: str,
    url_of: Callable[[str], str],
    body: dict[str, Any] | None,
) -> None:
    client = await _seeded(app_factory, database_url)
    admin = await _admin(database_url)
    provenance = await _provenance_id(client, database_url)
    url = url_of(provenance)
    resource = body if body is not None else {**_provenance(), "id": provenance}
    plain = await client.request(
        method, f"/{url}", json=resource if method != "DELETE" else None, headers=admin
    )
    assert plain.status_code == 405, plain.text
    entry: dict[str, Any] = {"request": {"method": method, "url": url}}
    if method != "DELETE":
        entry["resource"] = resource
    before = await _count(client, database_url, "/Provenance")
    for kind in ("transaction", "batch"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [entry]}
        response = await client.post("", json=bundle, headers=admin)
        if kind == "transaction":
            _outcome(response, 405, "not-supported", "Bundle.entry[0].request")
        else:
            assert response.status_code == 200, response.text
            answered = response.json()["entry"][0]["response"]
            assert answered["status"].startswith("405"), answered
            issue = answered["outcome"]["issue"][0]
            assert issue["expression"] == ["Bundle.entry[0].request"]
    assert await _count(client, database_url, "/Provenance") == before
    assert (await client.get(f"/Provenance/{provenance}", headers=admin)).json()["meta"][
        "versionId"
    ] == "1"


async def test_a_forged_entry_refuses_the_whole_transaction(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _team("own", "team-new"),
                "request": {"method": "POST", "url": "CareTeam"},
            },
            {"resource": _provenance(), "request": {"method": "POST", "url": "Provenance"}},
        ],
    }
    teams = await _count(client, database_url, "/CareTeam")
    response = await client.post("", json=bundle, headers=await _admin(database_url))
    _outcome(response, 405, "not-supported", "Bundle.entry[1].request")
    assert await _count(client, database_url, "/CareTeam") == teams


# -- conditional matches see only what the token sees --------------------------------------


async def test_conditional_create_does_not_match_another_patients_record(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = {**await _own(database_url), "If-None-Exist": f"identifier={TEAMS}|team-other"}
    response = await client.post("/CareTeam", json=_team("own", "team-x"), headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["subject"]["reference"] == "Patient/own"
    assert "ct-other" not in response.text


async def test_conditional_update_and_delete_do_not_match_another_patients_record(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _own(database_url)
    updated = await client.put(
        f"/CareTeam?identifier={TEAMS}|team-other", json=_team("own", "team-y"), headers=headers
    )
    assert updated.status_code == 201, updated.text
    assert updated.json()["id"] != "ct-other"
    deleted = await client.delete(f"/CareTeam?identifier={TEAMS}|team-other", headers=headers)
    assert deleted.status_code == 204, deleted.text
    admin = await _admin(database_url)
    other = (await client.get("/CareTeam/ct-other", headers=admin)).json()
    assert other["meta"]["versionId"] == "1"


async def test_transaction_conditional_matches_stay_in_the_compartment(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _own(database_url)
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/own"},
        "careTeam": [{"reference": f"CareTeam?identifier={TEAMS}|team-other"}],
    }
    referenced = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": plan, "request": {"method": "POST", "url": "CarePlan"}}],
    }
    response = await client.post("", json=referenced, headers=headers)
    _outcome(response, 422, "business-rule", None)
    assert "matches no resource" in response.text
    matched = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _team("own", "team-z"),
                "request": {
                    "method": "POST",
                    "url": "CareTeam",
                    "ifNoneExist": f"identifier={TEAMS}|team-other",
                },
            }
        ],
    }
    created = await client.post("", json=matched, headers=headers)
    assert created.status_code == 200, created.text
    assert created.json()["entry"][0]["response"]["status"].startswith("201")
    assert "ct-other" not in created.text


# -- _has, chains and the audit journal ----------------------------------------------------


async def test_has_on_an_unconfined_type_sees_only_the_own_patient(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    query = "/PractitionerRole?_has:Patient:general-practitioner:birthdate=lt2000"
    assert _ids(await client.get(query, headers=await _admin(database_url))) == [
        "PractitionerRole/gp-other"
    ]
    assert _ids(await client.get(query, headers=await _own(database_url, "patient/*.rs"))) == []
    own_query = "/PractitionerRole?_has:Patient:general-practitioner:birthdate=gt2000"
    assert _ids(await client.get(own_query, headers=await _own(database_url, "patient/*.rs"))) == [
        "PractitionerRole/gp-own"
    ]
    roles_only = await _own(database_url, "patient/PractitionerRole.rs")
    assert _ids(await client.get(own_query, headers=roles_only)) == []
    chained = "/CareTeam?subject:Patient.birthdate=lt2000"
    assert _ids(await client.get(chained, headers=await _own(database_url, "patient/*.rs"))) == []


@pytest.mark.parametrize(
    "criteria",
    ["subject:Patient.birthdate=lt2000", "_has:CareTeam:subject:status=active&_id=other"],
    ids=["chain", "has"],
)
async def test_chains_and_has_in_conditional_criteria_stay_in_the_compartment(
    app_factory: AppFactory, database_url: str, criteria: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _own(database_url)
    rtype = "CareTeam" if criteria.startswith("subject") else "Patient"
    body = _team("own", "team-q") if rtype == "CareTeam" else {"resourceType": "Patient"}
    response = await client.post(
        f"/{rtype}", json=body, headers={**headers, "If-None-Exist": criteria}
    )
    if rtype == "Patient":  # a patient token creates no other Patient: the match was not seen
        _outcome(response, 403, "forbidden", None)
    else:
        assert response.status_code == 201, response.text
    assert "Family-other" not in response.text and "ct-other" not in response.text


async def test_conditional_criteria_of_a_type_the_token_cannot_search_are_refused(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = bearer(await mint(database_url, "system/CareTeam.c"))
    response = await client.post(
        "/CareTeam",
        json=_team("own", "team-w"),
        headers={**headers, "If-None-Exist": f"identifier={TEAMS}|team-own"},
    )
    _outcome(response, 403, "forbidden", None)
    assert "ct-own" not in response.text


async def test_audit_search_with_a_patient_token_shows_only_its_patient(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    admin = await _admin(database_url)
    # One search about both patients: an event naming both.
    assert (await client.get("/Patient", headers=admin)).status_code == 200
    assert (await client.get("/Patient/other", headers=admin)).status_code == 200
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    await transport.app.state.audit.flush()  # type: ignore[attr-defined]
    headers = await _own(database_url, "patient/AuditEvent.rs")
    for query in ("/AuditEvent?patient=Patient/other", "/AuditEvent?patient=other", "/AuditEvent"):
        response = await client.get(query, headers=headers)
        assert response.status_code == 200, response.text
        assert "Patient/other" not in response.text, query


# -- the patient claim ---------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["own,other", "own other", "", "x" * 65])
async def test_a_patient_claim_that_is_not_one_fhir_id_is_refused(
    app_factory: AppFactory, database_url: str, claim: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = bearer(await mint(database_url, "patient/*.rs", patient=claim))
    response = await client.get("/CareTeam", headers=headers)
    _outcome(response, 401, "login", None)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "ct-other" not in response.text


# -- shared records a patient token may read but not write ---------------------------------


async def test_a_patient_token_reads_but_never_writes_shared_records(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _own(database_url)
    assert (await client.get("/PractitionerRole/gp-own", headers=headers)).status_code == 200
    assert _ids(await client.get("/Practitioner", headers=headers)) == ["Practitioner/dr"]
    role = (await client.get("/PractitionerRole/gp-own", headers=headers)).json()
    changed = {**role, "telecom": [{"system": "phone", "value": "0999"}]}
    patch = [{"op": "replace", "path": "/telecom/0/value", "value": "0999"}]
    for response in (
        await client.put("/PractitionerRole/gp-own", json=changed, headers=headers),
        await client.patch(
            "/PractitionerRole/gp-own",
            json=patch,
            headers={**headers, "Content-Type": "application/json-patch+json"},
        ),
        await client.delete("/Practitioner/dr", headers=headers),
        await client.post("/Practitioner", json={"resourceType": "Practitioner"}, headers=headers),
        await client.post(
            "",
            json={
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"request": {"method": "DELETE", "url": "Practitioner/dr"}}],
            },
            headers=headers,
        ),
    ):
        _outcome(response, 403, "forbidden", None)
    admin = await _admin(database_url)
    kept = (await client.get("/PractitionerRole/gp-own", headers=admin)).json()
    assert kept["telecom"][0]["value"] == "0100" and kept["meta"]["versionId"] == "1"
    assert (await client.get("/Practitioner/dr", headers=admin)).status_code == 200


# -- outside the compartment is as absent as what does not exist ---------------------------


@pytest.mark.parametrize(
    ("other", "missing"),
    [
        ("/CareTeam/ct-other", "/CareTeam/ct-none"),
        ("/Patient/other", "/Patient/none"),
        ("/CareTeam/ct-other/_history/1", "/CareTeam/ct-none/_history/1"),
        ("/CareTeam/ct-other/_history", "/CareTeam/ct-none/_history"),
        (
            f"/CareTeam/$accountable?patient={NHS}|{NHS_OTHER}",
            f"/CareTeam/$accountable?patient={NHS}|{NHS_NOBODY}",
        ),
        ("/CareTeam/$accountable?patient=Patient/other", "/CareTeam/$accountable?patient=none"),
    ],
    ids=["read", "read-patient", "vread", "history-instance", "accountable-nhs", "accountable"],
)
async def test_another_patients_record_is_404_like_a_missing_one(
    app_factory: AppFactory, database_url: str, other: str, missing: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _own(database_url)
    hidden = await client.get(other, headers=headers)
    absent = await client.get(missing, headers=headers)
    _outcome(hidden, 404, "not-found", None)
    _outcome(absent, 404, "not-found", None)
    assert "Family-other" not in hidden.text and "gp-other" not in hidden.text


async def test_another_patients_deleted_record_is_404_while_ones_own_is_410(
    app_factory: AppFactory, database_url: str
) -> None:
    """A deletion carries no data, yet answering 410 for another patient's deleted record
    would tell that it existed: it is judged by the version it deleted."""
    client = await _seeded(app_factory, database_url)
    admin = await _admin(database_url)
    for target in ("ct-own", "ct-other"):
        deleted = await client.delete(f"/CareTeam/{target}", headers=admin)
        assert deleted.status_code in (200, 204), deleted.text
    headers = await _own(database_url)
    _outcome(await client.get("/CareTeam/ct-other", headers=headers), 404, "not-found", None)
    own = await client.get("/CareTeam/ct-own", headers=headers)
    assert own.status_code == 410, own.text


async def test_writes_to_another_patients_record_are_404_like_a_missing_one(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _own(database_url)
    json_patch = {**headers, "Content-Type": "application/json-patch+json"}
    patch = [{"op": "replace", "path": "/status", "value": "inactive"}]
    for target in ("ct-other", "ct-none"):
        _outcome(
            await client.delete(f"/CareTeam/{target}", headers=headers), 404, "not-found", None
        )
        _outcome(
            await client.patch(f"/CareTeam/{target}", json=patch, headers=json_patch),
            404,
            "not-found",
            None,
        )
    updated = await client.put(
        "/CareTeam/ct-other", json={**_team("own", "mine"), "id": "ct-other"}, headers=headers
    )
    _outcome(updated, 404, "not-found", None)
    admin = await _admin(database_url)
    assert (await client.get("/CareTeam/ct-other", headers=admin)).json()["meta"][
        "versionId"
    ] == "1"


async def test_an_instance_operation_out_of_reach_is_404_like_a_missing_one(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    admin = await _admin(database_url)
    for org in ("org-a", "org-b"):
        body = {"resourceType": "Organization", "id": org, "identifier": [{"value": org}]}
        assert (await client.put(f"/Organization/{org}", json=body, headers=admin)).is_success
    headers = bearer(
        await mint(database_url, "system/Organization.rs?identifier=org-a system/CareTeam.rs")
    )
    assert (await client.get("/Organization/org-a/$caseload", headers=headers)).status_code == 200
    for org in ("org-b", "org-none"):
        response = await client.get(f"/Organization/{org}/$caseload", headers=headers)
        _outcome(response, 404, "not-found", None)


async def test_a_token_without_the_type_is_still_403(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await _seeded(app_factory, database_url)
    headers = await _own(database_url, "patient/Practitioner.rs")
    _outcome(await client.get("/CareTeam/ct-own", headers=headers), 403, "forbidden", None)
    _outcome(await client.get("/CareTeam/ct-none", headers=headers), 403, "forbidden", None)


# -- the token endpoint and the challenge --------------------------------------------------


async def test_a_request_without_credentials_gets_a_challenge_without_an_error_code(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await secure_client(app_factory)
    for path in ("/CareTeam/ct-own", "/CareTeam/_history", "/CareTeam"):
        response = await client.get(path)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == 'Bearer realm="keyworker"'
    bad = await client.get("/CareTeam", headers=bearer("not-a-jwt"))
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
