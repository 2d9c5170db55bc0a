"""Search within the caller's access: restrictions are ANDed into every search, into chains
and ``_has``, and into what ``_include``/``_revinclude`` bring; types the caller may not
search are refused (403) as the search type and silently absent as an included type.

The caller is a real ``Access`` built from SMART scopes for a ``patient/`` launch on
``pat-1``. The test puts it where the access dependency puts the development-mode access,
so everything below the dependency runs exactly as it does for a validated token.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.auth.access import Access
from tests.test_search_seed import seed

PATIENT_ONE = Access.from_scopes(
    "patient/CareTeam.rs patient/CarePlan.rs patient/Patient.rs patient/Practitioner.rs "
    "patient/RelatedPerson.rs",
    client_id="patient-app",
    user=None,
    patient="pat-1",
)


async def _found(client: httpx.AsyncClient, query: str) -> dict[str, list[str]]:
    response = await client.get(query)
    assert response.status_code == 200, response.text
    found: dict[str, list[str]] = {"match": [], "include": []}
    for entry in response.json().get("entry", []):
        resource: dict[str, Any] = entry["resource"]
        found.setdefault(entry["search"]["mode"], []).append(
            f"{resource['resourceType']}/{resource['id']}"
        )
    return found


PATIENT_TWO = Access.from_scopes(
    "patient/CareTeam.rs patient/Patient.rs",
    client_id="patient-app",
    user=None,
    patient="pat-2",
)


async def test_callers_share_a_search_s_statement_but_not_its_restrictions(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statements are built once per search shape and shared by every caller: a patient's
    restriction must travel as a parameter, so the next patient's identical search (same
    shape, same statement) sees that patient's records and no one else's."""
    await seed(client)
    query = "/CareTeam?_include=CareTeam:subject&_revinclude=CarePlan:care-team"
    seen = {}
    for access in (PATIENT_ONE, PATIENT_TWO, PATIENT_ONE):
        monkeypatch.setattr("service.routes.access.FULL_ACCESS", access)
        found = await _found(client, query)
        subjects = {ref for ref in found["include"] if ref.startswith("Patient/")}
        assert subjects == {f"Patient/{access.patient}"}, found
        seen.setdefault(access.patient, found)
        assert seen[access.patient] == found
    assert not set(seen["pat-1"]["match"]) & set(seen["pat-2"]["match"])


async def test_a_patient_scoped_caller_sees_only_that_patient(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(client)
    # Unrestricted first, so the restricted answers below are visibly narrower.
    assert (await _found(client, "/Practitioner?_has:CareTeam:participant:status=inactive"))[
        "match"
    ] == ["Practitioner/pr-1"]
    monkeypatch.setattr("service.routes.access.FULL_ACCESS", PATIENT_ONE)

    teams = await _found(client, "/CareTeam?_include=CareTeam:subject")
    assert teams["match"] == ["CareTeam/ct-1", "CareTeam/ct-3"]
    assert teams["include"] == ["Patient/pat-1"]
    assert (await _found(client, "/CareTeam?_id=ct-2"))["match"] == []
    assert (await _found(client, "/Patient"))["match"] == ["Patient/pat-1"]
    reverse = await _found(client, "/Practitioner?_id=pr-1&_revinclude=CareTeam:participant")
    assert reverse == {"match": ["Practitioner/pr-1"], "include": ["CareTeam/ct-1"]}
    # chains and _has cannot reach other patients' records either
    assert (await _found(client, "/Practitioner?_has:CareTeam:participant:status=inactive"))[
        "match"
    ] == []
    assert (await _found(client, "/CarePlan?care-team.status=inactive"))["match"] == []
    assert (await _found(client, "/CareTeam?participant:RelatedPerson.name=mary"))["match"] == []
    # a type outside the grant: absent from includes, refused as the searched type
    organisation = await _found(client, "/Patient?_include=Patient:organization")
    assert organisation == {"match": ["Patient/pat-1"], "include": []}
    refused = await client.get("/Organization")
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"
