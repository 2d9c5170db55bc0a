"""No empty array or object in any answer, and none stored (docs/adr/0002-no-empty-elements.md).

R4 JSON forbids them; a validating receiver refuses a resource or Bundle that has one. Answers
the service builds are checked on both request paths (the hot paths and the router); resources
written with empty elements are stored, answered and compared without them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.keyworking_world import build, care_team, ok, participant


def empty_places(value: Any, where: str = "$") -> list[str]:
    """Where ``value`` holds an empty array, object or string, or a null property."""
    if isinstance(value, dict):
        if not value:
            return [where]
        return [
            place
            for key, item in value.items()
            for place in (
                [f"{where}.{key}"] if item is None else empty_places(item, f"{where}.{key}")
            )
        ]
    if isinstance(value, list):
        if not value:
            return [where]
        return [p for i, item in enumerate(value) for p in empty_places(item, f"{where}[{i}]")]
    return [where] if value == "" else []


async def test_a_search_that_matches_nothing_has_no_entry(client: httpx.AsyncClient) -> None:
    hot = await client.get("/Patient", params={"name": "nobody-by-this-name"})
    routed = await client.post("/Patient/_search", data={"name": "nobody-by-this-name"})
    for response in (hot, routed):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["type"] == "searchset"
        assert "entry" not in body
        assert empty_places(body) == []


async def test_an_empty_history_has_no_entry(client: httpx.AsyncClient) -> None:
    response = await client.get("/RelatedPerson/_history")
    assert response.status_code == 200, response.text
    assert "entry" not in response.json()
    assert empty_places(response.json()) == []


async def test_the_capability_statement_has_no_empty_element(client: httpx.AsyncClient) -> None:
    response = await client.get("/metadata")
    assert response.status_code == 200
    statement = response.json()
    assert empty_places(statement) == []
    # A type that no _include starts from says nothing about it, rather than "[]".
    assert all(r.get("searchInclude") != [] for r in statement["rest"][0]["resource"])


async def test_definitional_resources_have_no_empty_element(client: httpx.AsyncClient) -> None:
    for kind in ("OperationDefinition", "CodeSystem", "ValueSet", "SearchParameter"):
        searchset = (await client.get(f"/{kind}")).json()
        assert searchset["entry"], kind
        assert empty_places(searchset) == [], kind
        for entry in searchset["entry"]:
            read = await client.get(f"/{kind}/{entry['resource']['id']}")
            assert read.status_code == 200
            assert empty_places(read.json()) == [], read.json()["id"]


async def test_a_gap_with_nothing_implicated_leaves_implicated_out(
    client: httpx.AsyncClient,
) -> None:
    """Nobody accountable and no key worker: no holder to implicate."""
    await build(client)
    await ok(client, care_team([participant("case-team-member", "PractitionerRole/r-kw")]), "ct")
    response = await client.get("/$accountability-gaps")
    assert response.status_code == 200, response.text
    bundle = response.json()
    issues = [e["resource"] for e in bundle["entry"]]
    codes = {i["code"]["coding"][0]["code"] for i in issues}
    assert {"no-accountable-professional", "no-keyworker"} <= codes
    assert all(
        "implicated" not in i for i in issues if i["patient"]["reference"] == "Patient/pat-1"
    )
    assert empty_places(bundle) == []


async def test_accountable_and_caseload_answers_have_no_empty_element(
    client: httpx.AsyncClient,
) -> None:
    await build(client)
    await ok(client, care_team([participant("case-team-member", "PractitionerRole/r-kw")]), "ct")
    answers = [
        await client.get("/CareTeam/$accountable", params={"patient": "Patient/pat-1"}),
        await client.get("/Organization/org-gp/$caseload"),
    ]
    for response in answers:
        assert response.status_code == 200, response.text
        assert empty_places(response.json()) == []


async def test_a_batch_of_nothing_answers_without_an_empty_entry(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/", json={"resourceType": "Bundle", "type": "batch"})
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "batch-response"
    assert "entry" not in response.json()
    assert empty_places(response.json()) == []


_WITH_EMPTIES = {
    "resourceType": "Patient",
    "meta": {},
    "extension": [],
    "identifier": [{"system": "https://example.org/mrn", "value": "M1", "period": {}}],
    "name": [{"family": "Doe", "given": ["Ann", "Jo"], "_given": [{}, {"id": "g2"}]}, {}],
    "telecom": [],
    "address": [{"line": [], "city": "Leeds"}],
    "contact": [{"name": {"family": "Roe"}, "telecom": [{}]}],
}
_NORMALISED = {
    "identifier": [{"system": "https://example.org/mrn", "value": "M1"}],
    "name": [{"family": "Doe", "given": ["Ann", "Jo"], "_given": [None, {"id": "g2"}]}],
    "address": [{"city": "Leeds"}],
    "contact": [{"name": {"family": "Roe"}}],
}


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}


async def test_empty_elements_are_left_out_on_write_on_both_paths(
    client: httpx.AsyncClient,
) -> None:
    written = await client.put("/Patient/emp-1", json={**_WITH_EMPTIES, "id": "emp-1"})
    assert written.status_code == 201, written.text
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": _WITH_EMPTIES, "request": {"method": "POST", "url": "Patient"}}],
    }
    transaction = await client.post("/", json=bundle)
    assert transaction.status_code == 200, transaction.text
    location = transaction.json()["entry"][0]["response"]["location"].split("/_history")[0]
    for answer in (written.json(), (await client.get("/Patient/emp-1")).json()):
        assert _content(answer) == _NORMALISED
        assert set(answer["meta"]) == {"versionId", "lastUpdated"}
    assert _content((await client.get(f"/{location}")).json()) == _NORMALISED
    found = (
        await client.get("/Patient", params={"identifier": "https://example.org/mrn|M1"})
    ).json()
    assert len(found["entry"]) == 2
    assert all(_content(e["resource"]) == _NORMALISED for e in found["entry"])


async def test_an_update_that_only_adds_empty_elements_is_no_new_version(
    client: httpx.AsyncClient, db_state: Callable[[], Awaitable[dict[str, int]]]
) -> None:
    first = await client.put("/Patient/emp-2", json={**_WITH_EMPTIES, "id": "emp-2"})
    assert first.status_code == 201
    before = await db_state()
    plain = {"resourceType": "Patient", "id": "emp-2", **_NORMALISED}
    again = await client.put("/Patient/emp-2", json={**plain, "photo": [], "link": [{}]})
    assert again.status_code == 200, again.text
    assert again.json()["meta"]["versionId"] == "1"
    assert await db_state() == before


async def test_a_refusal_naming_a_nameless_parameter_has_no_empty_string(
    client: httpx.AsyncClient,
) -> None:
    """A NUL in a parameter with no name: the issue names no element rather than ``""``."""
    for url in ("/Patient?=%00", "/CareTeam/$accountable?patient=x&=%00"):
        response = await client.get(url)
        assert response.status_code == 400, response.text
        outcome = response.json()
        assert outcome["issue"][0]["code"] == "value"
        assert empty_places(outcome) == []
