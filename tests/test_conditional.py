"""Conditional create, update and delete over HTTP, on each backend: the number of
current resources matching the criteria decides what happens, and refusals write nothing.

https://hl7.org/fhir/R4/http.html#ccreate, #cond-update, #cdelete
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

FHIR_JSON = "application/fhir+json"
FHIR = {"Content-Type": FHIR_JSON}
BASE = "http://test/fhir"
SYSTEM = "http://example.org/mrn"

DbState = Callable[[], Awaitable[dict[str, int]]]


def patient(value: str | None = None, **elements: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", **elements}
    if value is not None:
        body["identifier"] = [{"system": SYSTEM, "value": value}]
    return body


def criteria(value: str) -> str:
    return f"identifier={SYSTEM}|{value}"


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/{body['resourceType']}", json=body, headers=FHIR)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def outcome(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"]
    return body


def id_from_location(response: httpx.Response, resource_type: str = "Patient") -> str:
    location = response.headers["location"]
    prefix = f"{BASE}/{resource_type}/"
    assert location.startswith(prefix), location
    resource_id, marker, _version = location.removeprefix(prefix).partition("/_history/")
    assert marker, location
    return resource_id


# -- conditional create (If-None-Exist) --------------------------------------------------------


async def test_conditional_create_with_no_match_creates(client: httpx.AsyncClient) -> None:
    await create(client, patient("someone-else"))
    response = await client.post(
        "/Patient", json=patient("c-1"), headers={**FHIR, "If-None-Exist": criteria("c-1")}
    )
    assert response.status_code == 201, response.text
    pid = id_from_location(response)
    assert response.json()["id"] == pid
    assert response.json()["identifier"] == [{"system": SYSTEM, "value": "c-1"}]


async def test_conditional_create_with_one_match_returns_it_and_writes_nothing(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    existing = await create(client, patient("c-2", gender="female"))
    before = await db_state()
    response = await client.post(
        "/Patient",
        json=patient("c-2", gender="male"),
        headers={**FHIR, "If-None-Exist": criteria("c-2")},
    )
    assert response.status_code == 200, response.text
    assert response.json() == existing
    assert response.headers["etag"] == 'W/"1"'
    assert id_from_location(response) == existing["id"]
    assert await db_state() == before
    # The URL-encoded form of the header names the same criteria.
    encoded = await client.post(
        "/Patient",
        json=patient("c-2"),
        headers={**FHIR, "If-None-Exist": f"identifier={SYSTEM.replace(':', '%3A')}%7Cc-2"},
    )
    assert encoded.status_code == 200
    assert encoded.json()["id"] == existing["id"]
    assert await db_state() == before


async def test_conditional_create_with_two_matches_is_412(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    await create(client, patient("dup"))
    await create(client, patient("dup"))
    before = await db_state()
    response = await client.post(
        "/Patient", json=patient("dup"), headers={**FHIR, "If-None-Exist": criteria("dup")}
    )
    assert response.status_code == 412
    outcome(response)
    assert await db_state() == before


async def test_conditional_create_ignores_deleted_and_changed_resources(
    client: httpx.AsyncClient,
) -> None:
    gone = await create(client, patient("c-3"))
    assert (await client.delete(f"/Patient/{gone['id']}")).status_code == 204
    moved = await create(client, patient("c-3"))
    response = await client.put(
        f"/Patient/{moved['id']}",
        json={**patient("c-3-renumbered"), "id": moved["id"]},
        headers=FHIR,
    )
    assert response.status_code == 200
    created = await client.post(
        "/Patient", json=patient("c-3"), headers={**FHIR, "If-None-Exist": criteria("c-3")}
    )
    assert created.status_code == 201, created.text
    assert created.json()["id"] not in (gone["id"], moved["id"])
    matched = await client.post(
        "/Patient",
        json=patient("c-3-renumbered"),
        headers={**FHIR, "If-None-Exist": criteria("c-3-renumbered")},
    )
    assert matched.status_code == 200
    assert matched.json()["id"] == moved["id"]


async def test_conditional_create_with_an_unknown_parameter_is_400(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    before = await db_state()
    response = await client.post(
        "/Patient", json=patient("c-4"), headers={**FHIR, "If-None-Exist": "shoe-size=9"}
    )
    assert response.status_code == 400
    assert "shoe-size" in outcome(response)["issue"][0]["diagnostics"]
    assert await db_state() == before


async def test_concurrent_conditional_creates_make_one_resource(
    client: httpx.AsyncClient,
) -> None:
    headers = {**FHIR, "If-None-Exist": criteria("race")}
    responses = await asyncio.gather(
        *(client.post("/Patient", json=patient("race"), headers=headers) for _ in range(4))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 200, 201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    history = (await client.get("/Patient/_history")).json()
    assert len(history.get("entry", [])) == 1


# -- conditional update ---------------------------------------------------------------------


async def test_conditional_update_with_no_match_creates(client: httpx.AsyncClient) -> None:
    await create(client, patient("someone-else"))
    response = await client.put(
        "/Patient", params={"identifier": f"{SYSTEM}|u-1"}, json=patient("u-1"), headers=FHIR
    )
    assert response.status_code == 201, response.text
    pid = id_from_location(response)
    assert response.headers["location"].endswith("/_history/1")
    read = await client.get(f"/Patient/{pid}")
    assert read.status_code == 200
    assert read.json()["identifier"][0]["value"] == "u-1"


async def test_conditional_update_with_no_match_and_an_id_creates_at_that_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put(
        "/Patient",
        params={"identifier": f"{SYSTEM}|u-2"},
        json=patient("u-2", id="chosen-u-2"),
        headers=FHIR,
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{BASE}/Patient/chosen-u-2/_history/1"


async def test_conditional_update_with_no_match_and_a_live_resource_id_is_409(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    other = await create(client, patient("u-2b-other", gender="female"))
    before = await db_state()
    response = await client.put(
        "/Patient",
        params={"identifier": f"{SYSTEM}|u-2b"},
        json=patient("u-2b", id=other["id"], gender="male"),
        headers=FHIR,
    )
    assert response.status_code == 409, response.text
    outcome(response)
    assert await db_state() == before
    assert (await client.get(f"/Patient/{other['id']}")).json() == other
    # A deleted resource's id may be reused: that is update-as-create.
    assert (await client.delete(f"/Patient/{other['id']}")).status_code == 204
    reused = await client.put(
        "/Patient",
        params={"identifier": f"{SYSTEM}|u-2b"},
        json=patient("u-2b", id=other["id"]),
        headers=FHIR,
    )
    assert reused.status_code == 201, reused.text
    assert reused.headers["location"] == f"{BASE}/Patient/{other['id']}/_history/3"


async def test_conditional_update_with_one_match_updates_it(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    existing = await create(client, patient("u-3", gender="female"))
    other = await create(client, patient("u-3-other", gender="female"))
    response = await client.put(
        "/Patient",
        params={"identifier": f"{SYSTEM}|u-3"},
        json=patient("u-3", gender="male"),
        headers=FHIR,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == existing["id"]
    assert body["gender"] == "male"
    assert body["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'
    assert (await client.get(f"/Patient/{existing['id']}")).json() == body
    assert (await client.get(f"/Patient/{other['id']}")).json() == other
    # The body may name the matching resource's id, but no other.
    same = await client.put(
        "/Patient",
        params={"identifier": f"{SYSTEM}|u-3"},
        json=patient("u-3", id=existing["id"], gender="female"),
        headers=FHIR,
    )
    assert same.status_code == 200, same.text
    assert same.json()["meta"]["versionId"] == "3"
    before = await db_state()
    wrong = await client.put(
        "/Patient",
        params={"identifier": f"{SYSTEM}|u-3"},
        json=patient("u-3", id=other["id"], gender="other"),
        headers=FHIR,
    )
    assert wrong.status_code == 400
    outcome(wrong)
    assert await db_state() == before


async def test_conditional_update_with_two_matches_is_412(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    await create(client, patient("u-dup"))
    await create(client, patient("u-dup"))
    before = await db_state()
    response = await client.put(
        "/Patient", params={"identifier": f"{SYSTEM}|u-dup"}, json=patient("u-dup"), headers=FHIR
    )
    assert response.status_code == 412
    outcome(response)
    assert await db_state() == before


async def test_conditional_update_honours_if_match(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    existing = await create(client, patient("u-4", gender="female"))
    before = await db_state()
    stale = await client.put(
        "/Patient",
        params={"identifier": f"{SYSTEM}|u-4"},
        json=patient("u-4", gender="male"),
        headers={**FHIR, "If-Match": 'W/"2"'},
    )
    assert stale.status_code == 412
    assert await db_state() == before
    fresh = await client.put(
        "/Patient",
        params={"identifier": f"{SYSTEM}|u-4"},
        json=patient("u-4", gender="male"),
        headers={**FHIR, "If-Match": 'W/"1"'},
    )
    assert fresh.status_code == 200
    assert fresh.json()["id"] == existing["id"]


async def test_conditional_update_with_an_unknown_parameter_is_400(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    before = await db_state()
    response = await client.put(
        "/Patient", params={"shoe-size": "9"}, json=patient("u-5"), headers=FHIR
    )
    assert response.status_code == 400
    assert "shoe-size" in outcome(response)["issue"][0]["diagnostics"]
    assert await db_state() == before


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("query", ["", "?_format=json"])
async def test_conditional_update_and_delete_need_criteria(
    client: httpx.AsyncClient, db_state: DbState, method: str, query: str
) -> None:
    await create(client, patient("only-one"))
    before = await db_state()
    content = b'{"resourceType": "Patient"}' if method == "PUT" else None
    response = await client.request(method, f"/Patient{query}", content=content, headers=FHIR)
    assert response.status_code == 400, response.text
    outcome(response)
    assert await db_state() == before


# -- conditional delete ---------------------------------------------------------------------


async def test_conditional_delete_with_one_match_deletes_it(client: httpx.AsyncClient) -> None:
    doomed = await create(client, patient("d-1"))
    kept = await create(client, patient("d-1-other"))
    response = await client.delete("/Patient", params={"identifier": f"{SYSTEM}|d-1"})
    assert response.status_code == 204
    assert response.headers["etag"] == 'W/"2"'
    gone = await client.get(f"/Patient/{doomed['id']}")
    assert gone.status_code == 410
    outcome(gone)
    assert (await client.get(f"/Patient/{kept['id']}")).status_code == 200
    # Deleted resources no longer match: deleting again finds nothing.
    again = await client.delete("/Patient", params={"identifier": f"{SYSTEM}|d-1"})
    assert again.status_code == 204
    history = (await client.get(f"/Patient/{doomed['id']}/_history")).json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]


async def test_conditional_delete_with_two_matches_is_412(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    first = await create(client, patient("d-dup"))
    second = await create(client, patient("d-dup"))
    before = await db_state()
    response = await client.delete("/Patient", params={"identifier": f"{SYSTEM}|d-dup"})
    assert response.status_code == 412
    outcome(response)
    assert await db_state() == before
    for existing in (first, second):
        assert (await client.get(f"/Patient/{existing['id']}")).status_code == 200


async def test_conditional_delete_with_no_match_is_204_and_writes_nothing(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    await create(client, patient("d-other"))
    before = await db_state()
    response = await client.delete("/Patient", params={"identifier": f"{SYSTEM}|d-none"})
    assert response.status_code == 204
    assert await db_state() == before


async def test_conditional_delete_with_an_unknown_parameter_is_400(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    await create(client, patient("d-2"))
    before = await db_state()
    response = await client.delete("/Patient", params={"shoe-size": "9"})
    assert response.status_code == 400
    assert "shoe-size" in outcome(response)["issue"][0]["diagnostics"]
    assert await db_state() == before


async def test_conditional_delete_by_reference_criteria(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient("d-3")))["id"]
    other = (await create(client, patient("d-3-other")))["id"]
    team = {"resourceType": "CareTeam", "status": "active"}
    tid = (await create(client, {**team, "subject": {"reference": f"Patient/{pid}"}}))["id"]
    kept = (await create(client, {**team, "subject": {"reference": f"Patient/{other}"}}))["id"]
    response = await client.delete("/CareTeam", params={"patient": f"Patient/{pid}"})
    assert response.status_code == 204
    assert (await client.get(f"/CareTeam/{tid}")).status_code == 410
    assert (await client.get(f"/CareTeam/{kept}")).status_code == 200


async def test_conditional_delete_racing_an_update_never_errors(
    client: httpx.AsyncClient,
) -> None:
    """The matched resource is locked before it is deleted, so a concurrent update either
    lands first (and is then deleted) or waits and finds it deleted: never a 500."""
    for round_ in range(8):
        value = f"race-d-{round_}"
        pid = (await create(client, patient(value)))["id"]
        deleted, updated = await asyncio.gather(
            client.delete("/Patient", params={"identifier": f"{SYSTEM}|{value}"}),
            client.put(
                f"/Patient/{pid}", json={**patient(value, gender="male"), "id": pid}, headers=FHIR
            ),
        )
        assert deleted.status_code == 204, deleted.text
        assert updated.status_code in (200, 201), updated.text
        history = (await client.get(f"/Patient/{pid}/_history")).json()["entry"]
        etags = [e["response"]["etag"] for e in history]
        assert etags == ['W/"3"', 'W/"2"', 'W/"1"'], etags
        read = await client.get(f"/Patient/{pid}")
        methods = [e["request"]["method"] for e in history]
        assert read.status_code == (410 if methods[0] == "DELETE" else 200)


async def test_concurrent_conditional_updates_make_one_resource(
    client: httpx.AsyncClient,
) -> None:
    responses = await asyncio.gather(
        *(
            client.put(
                "/Patient",
                params={"identifier": f"{SYSTEM}|race-u"},
                json=patient("race-u", birthDate=f"199{n}"),
                headers=FHIR,
            )
            for n in range(4)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 200, 201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1


async def test_conditional_create_and_update_racing_on_the_same_criteria_make_one_resource(
    client: httpx.AsyncClient,
) -> None:
    """The same criteria spelled differently (header vs URL-encoded query, parameter order)
    still serialise against each other."""
    for round_ in range(4):
        value = f"race-cu-{round_}"
        created, updated, reordered = await asyncio.gather(
            client.post(
                "/Patient",
                json=patient(value),
                headers={**FHIR, "If-None-Exist": f"identifier={SYSTEM}|{value}"},
            ),
            client.put(
                "/Patient",
                params={"identifier": f"{SYSTEM}|{value}"},
                json=patient(value, gender="male"),
                headers=FHIR,
            ),
            client.put(
                f"/Patient?_format=json&identifier={SYSTEM}%7C{value}",
                json=patient(value, gender="female"),
                headers=FHIR,
            ),
        )
        responses = (created, updated, reordered)
        assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
        assert [r.status_code for r in responses].count(201) == 1
        assert len({r.json()["id"] for r in responses}) == 1
