"""The FHIR RESTful interactions over HTTP, on each backend: create, read, vread, update,
patch and delete, with their headers (ETag, Last-Modified, Location, If-Match, Prefer),
content negotiation, the CapabilityStatement and reference validation on write.

https://hl7.org/fhir/R4/http.html
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from service.conformance import TYPES as DEFINITIONAL_TYPES

FHIR_JSON = "application/fhir+json"
FHIR = {"Content-Type": FHIR_JSON}
PATCH = {"Content-Type": "application/json-patch+json"}
BASE = "http://test/fhir"
NHS = "https://fhir.nhs.uk/Id/nhs-number"

DbState = Callable[[], Awaitable[dict[str, int]]]


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": "Okafor"}], **elements}


def care_team(subject: dict[str, Any], **elements: Any) -> dict[str, Any]:
    return {"resourceType": "CareTeam", "status": "active", "subject": subject, **elements}


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/{body['resourceType']}", json=body, headers=FHIR)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def outcome(response: httpx.Response) -> dict[str, Any]:
    """The response's OperationOutcome (asserting that it is one, with at least one issue)."""
    assert response.headers["content-type"].startswith(FHIR_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"], body
    return body


def expressions(response: httpx.Response) -> list[str]:
    return [e for issue in outcome(response)["issue"] for e in issue.get("expression", [])]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def history_of(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    response = await client.get(f"{path}/_history")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json().get("entry", [])
    return entries


# -- create ---------------------------------------------------------------------------------


async def test_create_answers_201_with_location_etag_and_last_modified(
    client: httpx.AsyncClient,
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    response = await client.post("/Patient", json=patient(), headers=FHIR)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    pid = body["id"]
    assert pid and isinstance(pid, str)
    assert body["resourceType"] == "Patient"
    assert body["name"] == [{"family": "Okafor"}]
    assert body["meta"]["versionId"] == "1"
    updated = instant(body["meta"]["lastUpdated"])
    assert before <= updated <= datetime.now(UTC)
    assert response.headers["location"] == f"{BASE}/Patient/{pid}/_history/1"
    assert response.headers["etag"] == 'W/"1"'
    modified = parsedate_to_datetime(response.headers["last-modified"])
    assert response.headers["last-modified"].endswith(" GMT")
    assert modified == updated.replace(microsecond=0)


@pytest.mark.parametrize("client_id", ["chosen-by-client", "not a valid id!", 42])
async def test_create_ignores_a_client_supplied_id(
    client: httpx.AsyncClient, client_id: object
) -> None:
    response = await client.post("/Patient", json=patient(id=client_id), headers=FHIR)
    assert response.status_code == 201, response.text
    pid = response.json()["id"]
    assert pid != client_id
    assert response.headers["location"] == f"{BASE}/Patient/{pid}/_history/1"
    assert (await client.get("/Patient/chosen-by-client")).status_code == 404
    assert (await client.get(f"/Patient/{pid}")).json()["id"] == pid


async def test_create_ignores_client_version_metadata_and_keeps_the_rest(
    client: httpx.AsyncClient,
) -> None:
    meta = {"versionId": "7", "lastUpdated": "2001-01-01T00:00:00Z", "source": "#gp-system"}
    body = await create(client, patient(meta=meta))
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"] != "2001-01-01T00:00:00Z"
    assert body["meta"]["source"] == "#gp-system"


# -- read and vread -------------------------------------------------------------------------


async def test_read_returns_the_current_version_with_headers(client: httpx.AsyncClient) -> None:
    created = await create(client, patient())
    response = await client.get(f"/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'
    assert parsedate_to_datetime(response.headers["last-modified"]) == instant(
        created["meta"]["lastUpdated"]
    ).replace(microsecond=0)


async def test_vread_returns_old_content_after_an_update(client: httpx.AsyncClient) -> None:
    created = await create(client, patient(gender="female"))
    pid = created["id"]
    updated = await client.put(f"/Patient/{pid}", json=patient(id=pid, gender="male"), headers=FHIR)
    assert updated.status_code == 200, updated.text
    old = await client.get(f"/Patient/{pid}/_history/1")
    assert old.status_code == 200
    assert old.json() == created
    assert old.json()["gender"] == "female"
    assert old.headers["etag"] == 'W/"1"'
    new = await client.get(f"/Patient/{pid}/_history/2")
    assert new.status_code == 200
    assert new.json()["gender"] == "male"
    assert new.json()["meta"]["versionId"] == "2"
    assert (await client.get(f"/Patient/{pid}")).json() == new.json()


@pytest.mark.parametrize("version", ["3", "0", "abc"])
async def test_vread_of_an_unknown_version_is_404(client: httpx.AsyncClient, version: str) -> None:
    pid = (await create(client, patient()))["id"]
    response = await client.get(f"/Patient/{pid}/_history/{version}")
    assert response.status_code == 404
    assert outcome(response)["issue"][0]["code"] == "not-found"


async def test_read_and_vread_of_an_unknown_id_are_404(client: httpx.AsyncClient) -> None:
    for path in ("/Patient/no-such-patient", "/Patient/no-such-patient/_history/1"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert outcome(response)["issue"][0]["code"] == "not-found"


# -- update ---------------------------------------------------------------------------------


async def test_update_increments_the_version(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    for number in (2, 3):
        response = await client.put(
            f"/Patient/{pid}", json=patient(id=pid, birthDate=f"198{number}-01-01"), headers=FHIR
        )
        assert response.status_code == 200, response.text
        assert response.json()["meta"]["versionId"] == str(number)
        assert response.json()["birthDate"] == f"198{number}-01-01"
        assert response.headers["etag"] == f'W/"{number}"'
        assert "location" not in response.headers
    assert len(await history_of(client, f"/Patient/{pid}")) == 3


async def test_update_without_an_id_in_the_body_is_400(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    response = await client.put(f"/Patient/{pid}", json=patient(gender="other"), headers=FHIR)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["Patient.id"]


async def test_put_to_a_new_id_creates_it(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/Patient/client-chosen-1", json=patient(id="client-chosen-1"), headers=FHIR
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{BASE}/Patient/client-chosen-1/_history/1"
    assert response.headers["etag"] == 'W/"1"'
    assert response.json()["meta"]["versionId"] == "1"
    read = await client.get("/Patient/client-chosen-1")
    assert read.status_code == 200
    assert read.json()["id"] == "client-chosen-1"
    entries = await history_of(client, "/Patient/client-chosen-1")
    assert [e["request"]["method"] for e in entries] == ["PUT"]
    assert entries[0]["response"]["status"].startswith("201")


async def test_put_with_a_body_id_other_than_the_url_id_is_400(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    pid = (await create(client, patient()))["id"]
    before = await db_state()
    response = await client.put(f"/Patient/{pid}", json=patient(id="someone-else"), headers=FHIR)
    assert response.status_code == 400
    assert "Patient.id" in expressions(response)
    assert await db_state() == before
    assert (await client.get(f"/Patient/{pid}")).json()["meta"]["versionId"] == "1"


@pytest.mark.parametrize("bad_id", ["under_score", "x" * 65, "sp ace"])
async def test_put_to_an_id_fhir_does_not_allow_is_400(
    client: httpx.AsyncClient, db_state: DbState, bad_id: str
) -> None:
    before = await db_state()
    response = await client.put(f"/Patient/{bad_id}", json=patient(), headers=FHIR)
    assert response.status_code == 400, response.text
    outcome(response)
    assert await db_state() == before


async def test_an_update_that_changes_nothing_makes_no_new_version(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    created = await create(client, patient(gender="female"))
    pid = created["id"]
    before = await db_state()
    # The same content, resent as it was read back (with the server's meta) and without it.
    for body in (created, patient(id=pid, gender="female")):
        response = await client.put(f"/Patient/{pid}", json=body, headers=FHIR)
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == 'W/"1"'
        assert response.json()["meta"] == created["meta"]
    assert await db_state() == before
    assert len(await history_of(client, f"/Patient/{pid}")) == 1


async def test_an_update_that_changes_only_meta_tags_makes_a_new_version(
    client: httpx.AsyncClient,
) -> None:
    pid = (await create(client, patient()))["id"]
    tag = {"system": "http://example.org/tags", "code": "reviewed"}
    response = await client.put(
        f"/Patient/{pid}", json=patient(id=pid, meta={"tag": [tag]}), headers=FHIR
    )
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert response.json()["meta"]["tag"] == [tag]


async def test_update_of_another_type_in_the_body_is_400(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    body = {"resourceType": "Practitioner", "id": pid}
    response = await client.put(f"/Patient/{pid}", json=body, headers=FHIR)
    assert response.status_code == 400
    outcome(response)


# -- If-Match -------------------------------------------------------------------------------


async def test_update_with_a_matching_if_match_succeeds(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    for number, etag in enumerate(('W/"1"', 'W/"2"', ' W/"3" '), start=1):
        response = await client.put(
            f"/Patient/{pid}",
            json=patient(id=pid, birthDate=f"197{number}-01-01"),
            headers={**FHIR, "If-Match": etag},
        )
        assert response.status_code == 200, (etag, response.text)
    assert (await client.get(f"/Patient/{pid}")).headers["etag"] == 'W/"4"'


async def test_update_with_a_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    pid = (await create(client, patient(gender="female")))["id"]
    await client.put(f"/Patient/{pid}", json=patient(id=pid, gender="male"), headers=FHIR)
    before = await db_state()
    response = await client.put(
        f"/Patient/{pid}",
        json=patient(id=pid, gender="other"),
        headers={**FHIR, "If-Match": 'W/"1"'},
    )
    assert response.status_code == 412
    assert outcome(response)["issue"][0]["severity"] == "error"
    assert await db_state() == before
    current = await client.get(f"/Patient/{pid}")
    assert current.json()["gender"] == "male"
    assert current.headers["etag"] == 'W/"2"'


async def test_if_match_on_a_resource_that_does_not_exist_is_412(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    before = await db_state()
    response = await client.put(
        "/Patient/not-there-yet",
        json=patient(id="not-there-yet"),
        headers={**FHIR, "If-Match": 'W/"1"'},
    )
    assert response.status_code == 412
    outcome(response)
    assert await db_state() == before


async def test_a_malformed_if_match_is_400(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    response = await client.put(
        f"/Patient/{pid}", json=patient(id=pid), headers={**FHIR, "If-Match": "yesterday"}
    )
    assert response.status_code == 400
    outcome(response)


async def test_concurrent_updates_with_the_same_if_match_one_wins(
    client: httpx.AsyncClient,
) -> None:
    pid = (await create(client, patient()))["id"]

    def put(family: str, version: int) -> Awaitable[httpx.Response]:
        return client.put(
            f"/Patient/{pid}",
            json={"resourceType": "Patient", "id": pid, "name": [{"family": family}]},
            headers={**FHIR, "If-Match": f'W/"{version}"'},
        )

    for version in (1, 2, 3):  # a few rounds, so a lucky interleaving cannot hide a race
        # Both bodies differ from the current content, so neither is a no-op update.
        first, second = await asyncio.gather(
            put(f"A{version}", version), put(f"B{version}", version)
        )
        statuses = sorted([first.status_code, second.status_code])
        assert statuses == [200, 412], (first.text, second.text)
        winner = first if first.status_code == 200 else second
        loser = second if winner is first else first
        outcome(loser)
        assert winner.headers["etag"] == f'W/"{version + 1}"'
        read = await client.get(f"/Patient/{pid}")
        assert read.json() == winner.json()
    entries = await history_of(client, f"/Patient/{pid}")
    assert [e["response"]["etag"] for e in entries] == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    assert (await put("C", 1)).status_code == 412


async def test_concurrent_creates_of_the_same_new_id_make_one_resource(
    client: httpx.AsyncClient,
) -> None:
    results = await asyncio.gather(
        *(
            client.put("/Patient/race-1", json=patient(id="race-1", gender=g), headers=FHIR)
            for g in ("male", "female")
        )
    )
    statuses = sorted(r.status_code for r in results)
    # One creates; the other either updates it (serialised) or is told to retry (409).
    assert statuses[0] in (200, 201), [r.text for r in results]
    assert statuses.count(201) == 1, [r.text for r in results]
    assert set(statuses) <= {200, 201, 409}
    entries = await history_of(client, "/Patient/race-1")
    assert len(entries) == statuses.count(200) + 1


async def test_delete_honours_if_match(client: httpx.AsyncClient, db_state: DbState) -> None:
    pid = (await create(client, patient()))["id"]
    before = await db_state()
    stale = await client.delete(f"/Patient/{pid}", headers={"If-Match": 'W/"2"'})
    assert stale.status_code == 412
    outcome(stale)
    assert await db_state() == before
    assert (await client.get(f"/Patient/{pid}")).status_code == 200
    fresh = await client.delete(f"/Patient/{pid}", headers={"If-Match": 'W/"1"'})
    assert fresh.status_code == 204
    assert (await client.get(f"/Patient/{pid}")).status_code == 410


async def test_patch_honours_if_match(client: httpx.AsyncClient, db_state: DbState) -> None:
    pid = (await create(client, patient(gender="female")))["id"]
    ops = [{"op": "replace", "path": "/gender", "value": "male"}]
    before = await db_state()
    stale = await client.patch(f"/Patient/{pid}", json=ops, headers={**PATCH, "If-Match": 'W/"9"'})
    assert stale.status_code == 412
    outcome(stale)
    assert await db_state() == before
    # Stale is stale even when the patch would not apply to the current version.
    failing = [{"op": "test", "path": "/gender", "value": "male"}]
    stale_failing = await client.patch(
        f"/Patient/{pid}", json=failing, headers={**PATCH, "If-Match": 'W/"9"'}
    )
    assert stale_failing.status_code == 412
    fresh = await client.patch(f"/Patient/{pid}", json=ops, headers={**PATCH, "If-Match": 'W/"1"'})
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["gender"] == "male"
    assert fresh.headers["etag"] == 'W/"2"'


# -- Prefer ---------------------------------------------------------------------------------


async def test_prefer_return_minimal(client: httpx.AsyncClient) -> None:
    minimal = {**FHIR, "Prefer": "return=minimal"}
    created = await client.post("/Patient", json=patient(), headers=minimal)
    assert created.status_code == 201
    assert created.content == b""
    assert created.headers["etag"] == 'W/"1"'
    location = created.headers["location"]
    assert location.startswith(f"{BASE}/Patient/") and location.endswith("/_history/1")
    pid = location.removeprefix(f"{BASE}/Patient/").split("/")[0]
    updated = await client.put(
        f"/Patient/{pid}", json=patient(id=pid, gender="male"), headers=minimal
    )
    assert updated.status_code == 200
    assert updated.content == b""
    assert updated.headers["etag"] == 'W/"2"'
    patched = await client.patch(
        f"/Patient/{pid}",
        json=[{"op": "replace", "path": "/gender", "value": "female"}],
        headers={**PATCH, "Prefer": "return=minimal"},
    )
    assert patched.status_code == 200
    assert patched.content == b""
    assert patched.headers["etag"] == 'W/"3"'


async def test_prefer_return_representation(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/Patient", json=patient(), headers={**FHIR, "Prefer": "return=representation"}
    )
    assert created.status_code == 201
    body = created.json()
    assert body["resourceType"] == "Patient"
    assert body["meta"]["versionId"] == "1"
    assert (await client.get(f"/Patient/{body['id']}")).json() == body


async def test_prefer_return_operation_outcome(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/Patient", json=patient(), headers={**FHIR, "Prefer": "return=OperationOutcome"}
    )
    assert created.status_code == 201
    body = outcome(created)
    assert body["issue"][0]["severity"] in ("information", "warning")
    assert created.headers["etag"] == 'W/"1"'
    pid = created.headers["location"].removeprefix(f"{BASE}/Patient/").split("/")[0]
    read = await client.get(f"/Patient/{pid}", headers={"Prefer": "return=OperationOutcome"})
    assert read.json()["resourceType"] == "Patient"  # Prefer: return is for writes


# -- delete ---------------------------------------------------------------------------------


async def test_delete_then_read_is_gone_and_history_keeps_it(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    deleted = await client.delete(f"/Patient/{pid}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert deleted.headers["etag"] == 'W/"2"'
    gone = await client.get(f"/Patient/{pid}")
    assert gone.status_code == 410
    assert outcome(gone)["issue"][0]["code"] == "deleted"
    # vread of the deletion is Gone too; the version before it is still there.
    assert (await client.get(f"/Patient/{pid}/_history/2")).status_code == 410
    assert (await client.get(f"/Patient/{pid}/_history/1")).status_code == 200
    again = await client.delete(f"/Patient/{pid}")
    assert again.status_code == 204
    entries = await history_of(client, f"/Patient/{pid}")
    assert [e["request"]["method"] for e in entries] == ["DELETE", "POST"]
    assert "resource" not in entries[0]
    assert entries[0]["response"]["etag"] == 'W/"2"'
    assert entries[0]["request"]["url"] == f"Patient/{pid}"


async def test_delete_of_an_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    response = await client.delete("/Patient/never-was")
    assert response.status_code == 404
    outcome(response)


async def test_put_after_delete_recreates_with_the_version_continuing(
    client: httpx.AsyncClient,
) -> None:
    pid = (await create(client, patient(gender="female")))["id"]
    assert (await client.delete(f"/Patient/{pid}")).status_code == 204
    response = await client.put(
        f"/Patient/{pid}", json=patient(id=pid, gender="female"), headers=FHIR
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{BASE}/Patient/{pid}/_history/3"
    assert response.json()["meta"]["versionId"] == "3"
    assert (await client.get(f"/Patient/{pid}")).status_code == 200
    entries = await history_of(client, f"/Patient/{pid}")
    assert [e["request"]["method"] for e in entries] == ["PUT", "DELETE", "POST"]


async def test_patch_of_a_deleted_resource_is_410(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    await client.delete(f"/Patient/{pid}")
    response = await client.patch(
        f"/Patient/{pid}", json=[{"op": "add", "path": "/gender", "value": "male"}], headers=PATCH
    )
    assert response.status_code == 410
    outcome(response)


# -- JSON Patch -----------------------------------------------------------------------------


async def test_patch_replaces_an_element(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    team = await create(client, care_team({"reference": f"Patient/{pid}"}))
    response = await client.patch(
        f"/CareTeam/{team['id']}",
        json=[{"op": "replace", "path": "/status", "value": "inactive"}],
        headers=PATCH,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "inactive"
    assert body["meta"]["versionId"] == "2"
    assert body["subject"] == {"reference": f"Patient/{pid}"}
    assert response.headers["etag"] == 'W/"2"'
    read = await client.get(f"/CareTeam/{team['id']}")
    assert read.json() == body


async def test_patch_with_a_failing_test_op_is_422_and_writes_nothing(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    pid = (await create(client, patient(gender="female")))["id"]
    before = await db_state()
    response = await client.patch(
        f"/Patient/{pid}",
        json=[
            {"op": "replace", "path": "/gender", "value": "male"},
            {"op": "test", "path": "/birthDate", "value": "1970-01-01"},
        ],
        headers=PATCH,
    )
    assert response.status_code == 422
    outcome(response)
    assert await db_state() == before
    assert (await client.get(f"/Patient/{pid}")).json()["gender"] == "female"


async def test_patch_that_leaves_an_invalid_resource_is_400(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    pid = (await create(client, patient()))["id"]
    tid = (await create(client, care_team({"reference": f"Patient/{pid}"})))["id"]
    before = await db_state()
    response = await client.patch(
        f"/CareTeam/{tid}",
        json=[{"op": "replace", "path": "/status", "value": "bogus"}],
        headers=PATCH,
    )
    assert response.status_code == 400
    assert "CareTeam.status" in expressions(response)
    assert await db_state() == before


async def test_patch_that_changes_the_id_is_400(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    response = await client.patch(
        f"/Patient/{pid}", json=[{"op": "replace", "path": "/id", "value": "other"}], headers=PATCH
    )
    assert response.status_code == 400
    outcome(response)


async def test_patch_with_the_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    ops = [{"op": "replace", "path": "/gender", "value": "male"}]
    for content_type in ("application/json", FHIR_JSON):
        response = await client.patch(
            f"/Patient/{pid}", json=ops, headers={"Content-Type": content_type}
        )
        assert response.status_code == 415, content_type
        outcome(response)
    assert (await client.get(f"/Patient/{pid}")).json()["meta"]["versionId"] == "1"


async def test_patch_of_an_unknown_resource_is_404(client: httpx.AsyncClient) -> None:
    response = await client.patch(
        "/Patient/never-was",
        json=[{"op": "add", "path": "/gender", "value": "male"}],
        headers=PATCH,
    )
    assert response.status_code == 404
    outcome(response)


async def test_patch_that_is_not_an_array_is_400(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    response = await client.patch(
        f"/Patient/{pid}", json={"op": "add", "path": "/gender", "value": "male"}, headers=PATCH
    )
    assert response.status_code == 400
    outcome(response)


# -- formats --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "application/fhir+json", "application/json"])
async def test_json_formats_are_served(client: httpx.AsyncClient, fmt: str) -> None:
    pid = (await create(client, patient()))["id"]
    response = await client.get(f"/Patient/{pid}", params={"_format": fmt})
    assert response.status_code == 200
    expected = "application/json" if fmt == "application/json" else FHIR_JSON
    assert response.headers["content-type"].split(";")[0] == expected
    assert response.json()["id"] == pid


async def test_responses_are_fhir_json_by_default(client: httpx.AsyncClient) -> None:
    created = await client.post("/Patient", json=patient(), headers=FHIR)
    assert created.headers["content-type"].split(";")[0] == FHIR_JSON
    pid = created.json()["id"]
    for path in (f"/Patient/{pid}", f"/Patient/{pid}/_history", "/metadata", "/Patient/none"):
        response = await client.get(path)
        assert response.headers["content-type"].split(";")[0] == FHIR_JSON, path
    wildcard = await client.get(f"/Patient/{pid}", headers={"Accept": "*/*"})
    assert wildcard.headers["content-type"].split(";")[0] == FHIR_JSON


@pytest.mark.parametrize("fmt", ["xml", "application/fhir+xml", "text/turtle"])
async def test_other_formats_are_406(client: httpx.AsyncClient, fmt: str) -> None:
    pid = (await create(client, patient()))["id"]
    response = await client.get(f"/Patient/{pid}", params={"_format": fmt})
    assert response.status_code == 406
    outcome(response)


async def test_accept_xml_is_406(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    response = await client.get(f"/Patient/{pid}", headers={"Accept": "application/fhir+xml"})
    assert response.status_code == 406
    outcome(response)
    both = await client.get(
        f"/Patient/{pid}", headers={"Accept": "application/fhir+xml, application/fhir+json"}
    )
    assert both.status_code == 200


async def test_a_write_asking_for_xml_is_refused_before_it_writes(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    pid = (await create(client, patient(gender="female")))["id"]
    before = await db_state()
    attempts: list[Callable[[], Awaitable[httpx.Response]]] = [
        lambda: client.post("/Patient", params={"_format": "xml"}, json=patient(), headers=FHIR),
        lambda: client.put(
            f"/Patient/{pid}",
            json=patient(gender="male"),
            headers={**FHIR, "Accept": "application/fhir+xml"},
        ),
        lambda: client.delete(f"/Patient/{pid}", params={"_format": "xml"}),
        lambda: client.patch(
            f"/Patient/{pid}",
            params={"_format": "xml"},
            json=[{"op": "replace", "path": "/gender", "value": "male"}],
            headers=PATCH,
        ),
        lambda: client.put(
            "/Patient",
            params={"identifier": "http://example.org/mrn|x", "_format": "xml"},
            json=patient(),
            headers=FHIR,
        ),
    ]
    for attempt in attempts:
        response = await attempt()
        assert response.status_code == 406, response.text
        outcome(response)
    assert await db_state() == before


async def test_pretty_prints_indented_json(client: httpx.AsyncClient) -> None:
    created = await create(client, patient())
    plain = await client.get(f"/Patient/{created['id']}")
    pretty = await client.get(f"/Patient/{created['id']}", params={"_pretty": "true"})
    assert pretty.status_code == 200
    assert "\n  " in pretty.text
    assert "\n" not in plain.text
    assert pretty.json() == plain.json() == created


# -- CapabilityStatement --------------------------------------------------------------------

TYPES = {
    "CareTeam",
    "CarePlan",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "RelatedPerson",
}
INTERACTIONS = {
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "create",
    "history-instance",
    "history-type",
}


async def test_metadata_is_a_capability_statement(client: httpx.AsyncClient) -> None:
    response = await client.get("/metadata")
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert "application/fhir+json" in statement["format"]
    (rest,) = statement["rest"]
    assert rest["mode"] == "server"
    types = [r["type"] for r in rest["resource"]]
    # one entry each; Provenance and AuditEvent are server-written, read and search only;
    # the definitional types (CodeSystem, ...) are read-only (tests/test_conformance.py)
    assert sorted(types) == sorted(TYPES | {"Provenance", "AuditEvent"} | set(DEFINITIONAL_TYPES))
    for entry in (r for r in rest["resource"] if r["type"] in TYPES):
        codes = {i["code"] for i in entry["interaction"]}
        assert codes >= INTERACTIONS, (entry["type"], INTERACTIONS - codes)
    team = next(r for r in rest["resource"] if r["type"] == "CareTeam")
    names = {p["name"] for p in team["searchParam"]}
    assert names >= {"patient", "role", "participant-role"}
    assert "history-system" in {i["code"] for i in rest.get("interaction", [])}


# -- reference validation -------------------------------------------------------------------


async def test_reference_to_a_missing_patient_is_422(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    before = await db_state()
    response = await client.post(
        "/CareTeam", json=care_team({"reference": "Patient/does-not-exist"}), headers=FHIR
    )
    assert response.status_code == 422
    assert "CareTeam.subject" in expressions(response)
    assert await db_state() == before


async def test_reference_to_a_type_the_element_does_not_allow_is_422(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    prid = (await create(client, {"resourceType": "Practitioner"}))["id"]
    before = await db_state()
    response = await client.post(
        "/CareTeam", json=care_team({"reference": f"Practitioner/{prid}"}), headers=FHIR
    )
    assert response.status_code == 422
    assert "CareTeam.subject" in expressions(response)
    assert "Practitioner" in outcome(response)["issue"][0]["diagnostics"]
    assert await db_state() == before


async def test_identifier_only_reference_is_accepted(client: httpx.AsyncClient) -> None:
    subject = {"identifier": {"system": NHS, "value": "9434765919"}}
    response = await client.post("/CareTeam", json=care_team(subject), headers=FHIR)
    assert response.status_code == 201, response.text
    assert response.json()["subject"] == subject


async def test_reference_to_a_deleted_patient_is_422(client: httpx.AsyncClient) -> None:
    pid = (await create(client, patient()))["id"]
    tid = (await create(client, care_team({"reference": f"Patient/{pid}"})))["id"]
    assert (await client.delete(f"/Patient/{pid}")).status_code == 204
    created = await client.post(
        "/CareTeam", json=care_team({"reference": f"Patient/{pid}"}), headers=FHIR
    )
    assert created.status_code == 422
    assert "CareTeam.subject" in expressions(created)
    updated = await client.put(
        f"/CareTeam/{tid}",
        json=care_team({"reference": f"Patient/{pid}"}, id=tid, status="inactive"),
        headers=FHIR,
    )
    assert updated.status_code == 422
    assert "CareTeam.subject" in expressions(updated)


async def test_every_unresolvable_reference_is_reported_at_once(
    client: httpx.AsyncClient,
) -> None:
    body = care_team(
        {"reference": "Patient/missing"},
        participant=[
            {"member": {"reference": "Practitioner/missing-1"}},
            {"member": {"reference": "Practitioner/missing-2"}},
        ],
    )
    response = await client.post("/CareTeam", json=body, headers=FHIR)
    assert response.status_code == 422
    assert set(expressions(response)) >= {
        "CareTeam.subject",
        "CareTeam.participant[0].member",
        "CareTeam.participant[1].member",
    }


async def test_absolute_references_to_this_server_are_checked(
    client: httpx.AsyncClient,
) -> None:
    pid = (await create(client, patient()))["id"]
    good = await client.post(
        "/CareTeam", json=care_team({"reference": f"{BASE}/Patient/{pid}"}), headers=FHIR
    )
    assert good.status_code == 201, good.text
    bad = await client.post(
        "/CareTeam", json=care_team({"reference": f"{BASE}/Patient/nobody"}), headers=FHIR
    )
    assert bad.status_code == 422
    assert "CareTeam.subject" in expressions(bad)


async def test_server_assigned_ids_are_time_ordered_uuids(client: httpx.AsyncClient) -> None:
    """Ids the server assigns are UUIDs of version 7: later creates sort after earlier ones,
    which keeps the (type, id) indexes appending at their right-hand edge."""
    ids = [(await create(client, patient()))["id"] for _ in range(5)]
    assert all(uuid.UUID(i).version == 7 for i in ids), ids
    assert ids == sorted(ids)
