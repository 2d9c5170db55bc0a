"""Searches wider than one type: the patient compartment (``Patient/{id}/{type}``), system
search (``GET /fhir?_type=...``) and ``Patient/{id}/$everything``, each paged like any
search and each within the caller's reach."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.auth.access import Access
from tests.conftest import BASE
from tests.test_search_seed import FHIR, ROLE, SEED, seed

Bundle = dict[str, Any]
PATIENT_ONE = Access.from_scopes(
    "patient/CareTeam.rs patient/CarePlan.rs patient/Patient.rs patient/Practitioner.rs "
    "patient/RelatedPerson.rs",
    client_id="patient-app",
    user=None,
    patient="pat-1",
)
# pat-1's own records and what they refer to, in the order they were written (Provenances,
# which the server writes alongside, are left out of the comparisons).
PAT_1_EVERYTHING = [
    "Organization/org-a",
    "Practitioner/pr-1",
    "Practitioner/pr-2",
    "Practitioner/pr-3",
    "Patient/pat-1",
    "RelatedPerson/rp-1",
    "CareTeam/ct-1",
    "CareTeam/ct-3",
    "CarePlan/cp-1",
    "CarePlan/cp-3",
]


async def _bundle(client: httpx.AsyncClient, url: str) -> Bundle:
    response = await client.get(url)
    assert response.status_code == 200, (url, response.text)
    body: Bundle = response.json()
    assert body["type"] == "searchset"
    return body


def _found(bundle: Bundle) -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "match" and e["resource"]["resourceType"] != "Provenance"
    ]


async def _all_pages(client: httpx.AsyncClient, url: str) -> list[str]:
    found: list[str] = []
    following: str | None = url
    while following:
        bundle = await _bundle(client, following)
        found += _found(bundle)
        following = next((x["url"] for x in bundle["link"] if x["relation"] == "next"), None)
    return found


def _refused(response: httpx.Response, status: int, code: str, expression: str) -> None:
    assert response.status_code == status, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code and issue["expression"] == [expression], issue


async def test_compartment_search_finds_the_patient_s_records_by_every_link(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    # R4 puts a CareTeam in the compartment of a patient who is one of its participants too.
    member = {
        "resourceType": "CareTeam",
        "id": "ct-member",
        "status": "active",
        "subject": {"reference": "Patient/pat-3"},
        "participant": [
            {
                "member": {"reference": "Patient/pat-2"},
                "role": [{"coding": [{"system": ROLE, "code": "case-team-member"}]}],
            }
        ],
    }
    response = await client.put("/CareTeam/ct-member", json=member, headers=FHIR)
    assert response.status_code == 201, response.text
    assert _found(await _bundle(client, "/Patient/pat-1/CareTeam")) == [
        "CareTeam/ct-1",
        "CareTeam/ct-3",
    ]
    assert _found(await _bundle(client, "/Patient/pat-2/CareTeam")) == [
        "CareTeam/ct-2",
        "CareTeam/ct-member",
    ]
    active = await _bundle(client, "/Patient/pat-1/CareTeam?status=active&_total=accurate")
    assert _found(active) == ["CareTeam/ct-1"] and active["total"] == 1
    assert _found(await _bundle(client, "/Patient/pat-1/CarePlan")) == [
        "CarePlan/cp-1",
        "CarePlan/cp-3",
    ]
    assert _found(await _bundle(client, "/Patient/pat-1/RelatedPerson")) == ["RelatedPerson/rp-1"]
    paged = await _bundle(client, "/Patient/pat-1/CareTeam?_count=1")
    links = {x["relation"]: x["url"] for x in paged["link"]}
    assert links["self"] == f"{BASE}/Patient/pat-1/CareTeam?_count=1"
    assert links["next"].startswith(f"{BASE}/Patient/pat-1/CareTeam?")
    assert await _all_pages(client, "/Patient/pat-1/CareTeam?_count=1") == [
        "CareTeam/ct-1",
        "CareTeam/ct-3",
    ]
    included = await _bundle(client, "/Patient/pat-1/CarePlan?_id=cp-1&_include=CarePlan:care-team")
    assert [e["resource"]["id"] for e in included["entry"]] == ["cp-1", "ct-1"]
    _refused(
        await client.get("/Patient/pat-1/CareTeam?nonsense=1"), 400, "not-supported", "nonsense"
    )
    missing = await client.get("/Patient/nobody/CareTeam")
    assert missing.status_code == 404


async def test_everything_is_the_patient_its_compartment_and_who_they_name(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    everything = await _bundle(client, "/Patient/pat-1/$everything")
    assert _found(everything) == PAT_1_EVERYTHING
    assert await _all_pages(client, "/Patient/pat-1/$everything?_count=3") == PAT_1_EVERYTHING
    provenances = [
        e["resource"] for e in everything["entry"] if e["resource"]["resourceType"] == "Provenance"
    ]
    for provenance in provenances:
        assert {"reference": "Patient/pat-1"} in provenance["target"] or any(
            t["reference"].split("/_history")[0] in PAT_1_EVERYTHING for t in provenance["target"]
        )
    other = await _bundle(client, "/Patient/pat-3/$everything")
    assert _found(other) == ["Organization/org-b", "Patient/pat-3", "CareTeam/ct-5"]
    # a professional named by role brings the role's practitioner and organisation
    pat_3 = next(r for r in SEED if r["id"] == "pat-3")
    by_role = {**pat_3, "generalPractitioner": [{"reference": "PractitionerRole/role-2"}]}
    assert (await client.put("/Patient/pat-3", json=by_role, headers=FHIR)).status_code == 200
    assert _found(await _bundle(client, "/Patient/pat-3/$everything")) == [
        "Organization/org-b",
        "Practitioner/pr-2",
        "Patient/pat-3",
        "PractitionerRole/role-2",
        "CareTeam/ct-5",
    ]
    since = await _bundle(client, "/Patient/pat-1/$everything?_since=2999-01-01")
    assert _found(since) == []
    _refused(
        await client.get("/Patient/pat-1/$everything?start=2020"), 400, "not-supported", "start"
    )
    assert (await client.get("/Patient/nobody/$everything")).status_code == 404


async def test_system_search_across_the_types_named(client: httpx.AsyncClient) -> None:
    await seed(client)
    named = await _bundle(
        client, f"{BASE}/?_type=Patient,Organization&_id=pat-1,org-a&_total=accurate"
    )
    assert _found(named) == ["Organization/org-a", "Patient/pat-1"] and named["total"] == 2
    assert _found(await _bundle(client, f"{BASE}?_id=pat-2")) == ["Patient/pat-2"]
    assert _found(await _bundle(client, f"{BASE}?_type=Patient,Practitioner&name=smi")) == [
        "Practitioner/pr-1"
    ]
    paged = f"{BASE}?_type=Organization,Practitioner&_count=2"
    assert await _all_pages(client, paged) == [
        "Organization/org-a",
        "Organization/org-b",
        "Organization/org-c",
        "Practitioner/pr-1",
        "Practitioner/pr-2",
        "Practitioner/pr-3",
    ]
    newest = await _bundle(client, f"{BASE}?_type=CarePlan,CareTeam&_sort=-_lastUpdated&_count=1")
    assert _found(newest) == ["CarePlan/cp-3"]
    _refused(
        await client.get(f"{BASE}?_type=Patient,CareTeam&family=x"), 400, "not-supported", "family"
    )
    _refused(await client.get(f"{BASE}?_type=AuditEvent"), 400, "not-supported", "_type")
    _refused(await client.get(f"{BASE}?_type=Nothing"), 400, "not-supported", "_type")
    _refused(await client.get(f"{BASE}?_include=*"), 400, "not-supported", "_include")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    posted = await client.post("/_search", content="_type=Patient&_id=pat-3", headers=form)
    assert posted.status_code == 200
    assert _found(posted.json()) == ["Patient/pat-3"]


async def test_statement_lists_what_is_searched_across_types(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    rest = statement["rest"][0]
    assert {"code": "search-system"} in rest["interaction"]
    assert rest["compartment"] == ["http://hl7.org/fhir/CompartmentDefinition/patient"]
    assert {p["name"] for p in rest["searchParam"]} == {
        "_id",
        "_lastUpdated",
        "_tag",
        "_profile",
        "_security",
        "_source",
    }
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert {
        "name": "everything",
        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    } in patient["operation"]
    paths = (await client.get("http://test/openapi.json")).json()["paths"]
    assert "/fhir/Patient/{id}/CareTeam" in paths and "/fhir/Patient/{id}/$everything" in paths
    assert "get" in paths["/fhir"] and "get" in paths["/fhir/"]


async def test_a_patient_s_token_reaches_its_own_compartment_only(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(client)
    monkeypatch.setattr("service.routes.access.FULL_ACCESS", PATIENT_ONE)
    for other in ("/Patient/pat-2/CareTeam", "/Patient/pat-2/$everything"):
        refused = await client.get(other)
        assert refused.status_code == 404, refused.text
    own = await _bundle(client, "/Patient/pat-1/$everything")
    # no Organization or Provenance scope: those are absent, not refused
    assert _found(own) == [r for r in PAT_1_EVERYTHING if not r.startswith("Organization")]
    assert all(e["resource"]["resourceType"] != "Provenance" for e in own["entry"])
    assert _found(await _bundle(client, "/Patient/pat-1/CareTeam")) == [
        "CareTeam/ct-1",
        "CareTeam/ct-3",
    ]
    assert _found(await _bundle(client, f"{BASE}?_type=Patient,CareTeam")) == [
        "Patient/pat-1",
        "CareTeam/ct-1",
        "CareTeam/ct-3",
    ]
    assert _found(await _bundle(client, f"{BASE}?_id=pat-2,ct-2,cp-2,rp-1")) == [
        "RelatedPerson/rp-1"
    ]
    forbidden = await client.get(f"{BASE}?_type=Organization")
    assert forbidden.status_code == 403
