"""History at instance, type and system level over HTTP, on each backend: newest first,
Bundle type ``history``, keyset paging that neither repeats nor skips while others write,
signed cursors, ``_since`` and ``_at``.

https://hl7.org/fhir/R4/http.html#history
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

FHIR_JSON = "application/fhir+json"
FHIR = {"Content-Type": FHIR_JSON}
BASE = "http://test/fhir"

Entry = dict[str, Any]


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/{body['resourceType']}", json=body, headers=FHIR)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def put(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.put(f"/{body['resourceType']}/{body['id']}", json=body, headers=FHIR)
    assert response.status_code in (200, 201), response.text
    updated: dict[str, Any] = response.json()
    return updated


async def tick() -> None:
    """Let the millisecond clock move on, so versions get distinct lastUpdated values."""
    await asyncio.sleep(0.005)


def links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", [])}


def key(entry: Entry) -> tuple[str, str]:
    return entry["fullUrl"], entry["response"]["etag"]


async def bundle_at(client: httpx.AsyncClient, url: str, **params: str) -> dict[str, Any]:
    # httpx replaces a URL's own query with ``params`` even when they are empty.
    response = await client.get(url, params=params) if params else await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    bundle: dict[str, Any] = response.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "history"
    return bundle


async def everything(client: httpx.AsyncClient, url: str, **params: str) -> list[Entry]:
    """All of a history in one page (the test databases are small)."""
    bundle = await bundle_at(client, url, _count="1000", **params)
    assert "next" not in links(bundle)
    entries: list[Entry] = bundle.get("entry", [])
    return entries


async def follow_next(
    client: httpx.AsyncClient,
    url: str,
    count: int,
    between: Callable[[], Awaitable[None]] | None = None,
) -> list[list[Entry]]:
    """Every page from ``url`` by ``next`` links, calling ``between`` before each fetch."""
    pages: list[list[Entry]] = []
    bundle = await bundle_at(client, url, _count=str(count))
    while True:
        page: list[Entry] = bundle.get("entry", [])
        assert len(page) <= count
        pages.append(page)
        following = links(bundle).get("next")
        if following is None:
            return pages
        assert following.startswith(BASE + "/")
        assert page, "a next link from an empty page"
        assert len(pages) < 100, "paging does not end"
        if between is not None:
            await between()
        bundle = await bundle_at(client, following)


def flat(pages: list[list[Entry]]) -> list[tuple[str, str]]:
    return [key(e) for page in pages for e in page]


def last_modified(entry: Entry) -> datetime:
    return datetime.fromisoformat(entry["response"]["lastModified"].replace("Z", "+00:00"))


async def seed(client: httpx.AsyncClient) -> dict[str, str]:
    """A Patient, a Practitioner and a CareTeam with a few versions each, one deleted."""
    pid = (await create(client, {"resourceType": "Patient", "gender": "female"}))["id"]
    await tick()
    prid = (await create(client, {"resourceType": "Practitioner"}))["id"]
    await tick()
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": f"Patient/{pid}"},
    }
    tid = (await create(client, team))["id"]
    await tick()
    await put(client, {**team, "id": tid, "status": "suspended"})
    await tick()
    await put(client, {"resourceType": "Patient", "id": pid, "gender": "male"})
    await tick()
    assert (await client.delete(f"/Practitioner/{prid}")).status_code == 204
    return {"patient": pid, "practitioner": prid, "team": tid}


# -- the three levels ----------------------------------------------------------------------


async def test_instance_history_lists_every_version_newest_first(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, {"resourceType": "Patient", "gender": "female"})
    pid = created["id"]
    await tick()
    updated = await put(client, {"resourceType": "Patient", "id": pid, "gender": "male"})
    await tick()
    deleted = await client.delete(f"/Patient/{pid}")
    assert deleted.status_code == 204
    bundle = await bundle_at(client, f"/Patient/{pid}/_history")
    entries = bundle["entry"]
    assert len(entries) == 3
    gone, second, first = entries
    for entry in entries:
        assert entry["fullUrl"] == f"{BASE}/Patient/{pid}"
    assert gone["request"] == {"method": "DELETE", "url": f"Patient/{pid}"}
    assert "resource" not in gone
    assert gone["response"]["etag"] == 'W/"3"'
    assert gone["response"]["status"].split()[0] in ("200", "204")
    assert second["request"] == {"method": "PUT", "url": f"Patient/{pid}"}
    assert second["response"]["status"].startswith("200")
    assert second["response"]["etag"] == 'W/"2"'
    assert second["resource"] == updated
    assert second["response"]["lastModified"] == updated["meta"]["lastUpdated"]
    assert first["request"] == {"method": "POST", "url": "Patient"}
    assert first["response"]["status"].startswith("201")
    assert first["response"]["etag"] == 'W/"1"'
    assert first["resource"] == created
    assert first["response"]["lastModified"] == created["meta"]["lastUpdated"]
    assert last_modified(gone) >= last_modified(second) > last_modified(first)
    assert links(bundle)["self"].startswith(f"{BASE}/Patient/{pid}/_history")


async def test_instance_history_of_an_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/Patient/never-was/_history")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_type_history_holds_only_that_type_newest_first(
    client: httpx.AsyncClient,
) -> None:
    ids = await seed(client)
    entries = await everything(client, "/CareTeam/_history")
    assert [(e["request"]["method"], e["response"]["etag"]) for e in entries] == [
        ("PUT", 'W/"2"'),
        ("POST", 'W/"1"'),
    ]
    assert {e["fullUrl"] for e in entries} == {f"{BASE}/CareTeam/{ids['team']}"}
    assert entries[0]["resource"]["status"] == "suspended"
    assert entries[1]["resource"]["status"] == "active"
    assert entries[1]["request"]["url"] == "CareTeam"
    patients = await everything(client, "/Patient/_history")
    assert [e["response"]["etag"] for e in patients] == ['W/"2"', 'W/"1"']
    practitioners = await everything(client, "/Practitioner/_history")
    assert [e["request"]["method"] for e in practitioners] == ["DELETE", "POST"]
    assert await everything(client, "/Organization/_history") == []


async def test_system_history_holds_every_type_newest_first(client: httpx.AsyncClient) -> None:
    ids = await seed(client)
    # Each CareTeam write also records a Provenance (service.audit.provenance).
    entries = [
        e for e in await everything(client, "/_history") if "/Provenance/" not in e["fullUrl"]
    ]
    assert [(e["fullUrl"], e["request"]["method"]) for e in entries] == [
        (f"{BASE}/Practitioner/{ids['practitioner']}", "DELETE"),
        (f"{BASE}/Patient/{ids['patient']}", "PUT"),
        (f"{BASE}/CareTeam/{ids['team']}", "PUT"),
        (f"{BASE}/CareTeam/{ids['team']}", "POST"),
        (f"{BASE}/Practitioner/{ids['practitioner']}", "POST"),
        (f"{BASE}/Patient/{ids['patient']}", "POST"),
    ]
    moments = [last_modified(e) for e in entries]
    assert moments == sorted(moments, reverse=True)
    for entry in entries:
        if "resource" in entry:
            assert entry["resource"]["meta"]["versionId"] == entry["response"]["etag"][3:-1]
            assert entry["response"]["lastModified"] == entry["resource"]["meta"]["lastUpdated"]


async def test_history_of_an_empty_server_is_an_empty_bundle(client: httpx.AsyncClient) -> None:
    bundle = await bundle_at(client, "/_history")
    assert bundle.get("entry", []) == []
    assert "next" not in links(bundle)
    assert "previous" not in links(bundle)


# -- paging --------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["system", "type", "instance"])
async def test_next_links_visit_every_entry_once_in_order(
    client: httpx.AsyncClient, level: str
) -> None:
    pid = (await create(client, {"resourceType": "Patient"}))["id"]
    for n in range(6):
        await put(client, {"resourceType": "Patient", "id": pid, "birthDate": f"190{n}"})
    await create(client, {"resourceType": "Practitioner"})
    url = {
        "system": "/_history",
        "type": "/Patient/_history",
        "instance": f"/Patient/{pid}/_history",
    }[level]
    expected = [key(e) for e in await everything(client, url)]
    assert len(expected) == {"system": 8, "type": 7, "instance": 7}[level]
    pages = await follow_next(client, url, 2)
    assert [len(p) for p in pages[:-1]] == [2] * (len(pages) - 1)
    assert flat(pages) == expected
    assert len(set(flat(pages))) == len(expected)


async def test_pages_in_flight_neither_repeat_nor_skip_while_others_write(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    before = [key(e) for e in await everything(client, "/_history")]

    async def write_more() -> None:
        await create(client, {"resourceType": "Organization", "name": "Newcomer"})
        await create(client, {"resourceType": "Patient"})

    pages = await follow_next(client, "/_history", 2, between=write_more)
    assert flat(pages) == before
    after = [key(e) for e in await everything(client, "/_history")]
    assert len(after) == len(before) + 2 * (len(pages) - 1)
    assert after[-len(before) :] == before


async def test_previous_leads_back_to_the_same_entries(client: httpx.AsyncClient) -> None:
    await seed(client)
    first = await bundle_at(client, "/_history", _count="2")
    assert "previous" not in links(first)
    second = await bundle_at(client, links(first)["next"])
    third = await bundle_at(client, links(second)["next"])
    # Newer versions written meanwhile must not shift the pages back.
    await create(client, {"resourceType": "Organization", "name": "Newcomer"})
    await create(client, {"resourceType": "Organization", "name": "Another"})
    back = await bundle_at(client, links(second)["previous"])
    assert [key(e) for e in back["entry"]] == [key(e) for e in first["entry"]]
    again = await bundle_at(client, links(back)["next"])
    assert [key(e) for e in again["entry"]] == [key(e) for e in second["entry"]]
    back_two = await bundle_at(client, links(third)["previous"])
    assert [key(e) for e in back_two["entry"]] == [key(e) for e in second["entry"]]
    # Going back past the first page reaches what was written since, newest last page first.
    newer = await bundle_at(client, links(back)["previous"])
    names = [e["resource"]["name"] for e in newer["entry"]]
    assert names == ["Another", "Newcomer"]


async def test_page_size_is_capped_by_the_server(
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    client = await app_factory(max_page_size=5)
    pid = (await create(client, {"resourceType": "Patient"}))["id"]
    for n in range(7):
        await put(client, {"resourceType": "Patient", "id": pid, "birthDate": f"190{n}"})
    bundle = await bundle_at(client, "/_history", _count="100")
    assert len(bundle["entry"]) == 5
    assert "next" in links(bundle)


@pytest.mark.parametrize("count", ["-1", "two", "1.5"])
async def test_a_bad_count_is_400(client: httpx.AsyncClient, count: str) -> None:
    response = await client.get("/_history", params={"_count": count})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def _tamper(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


async def test_a_tampered_or_forged_cursor_is_400(client: httpx.AsyncClient) -> None:
    await seed(client)
    first = await bundle_at(client, "/_history", _count="2")
    next_url = httpx.URL(links(first)["next"])
    cursor = next_url.params["_cursor"]
    forged = base64.urlsafe_b64encode(b"\0" * 16 + b'{"d":"next","s":999999}').decode()
    for bad in (_tamper(cursor), cursor[:-4], forged, "not a cursor", "%%%"):
        response = await client.get("/_history", params={"_count": "2", "_cursor": bad})
        assert response.status_code == 400, bad
        body = response.json()
        assert body["resourceType"] == "OperationOutcome"
        assert "cursor" in body["issue"][0]["diagnostics"]
    assert (await client.get(str(next_url))).status_code == 200


# -- _since and _at --------------------------------------------------------------------------


async def test_since_excludes_older_versions(client: httpx.AsyncClient) -> None:
    first = await create(client, {"resourceType": "Patient", "gender": "female"})
    pid = first["id"]
    await tick()
    second = await put(client, {"resourceType": "Patient", "id": pid, "gender": "male"})
    await tick()
    other = await create(client, {"resourceType": "Practitioner"})
    since = second["meta"]["lastUpdated"]
    instance = await everything(client, f"/Patient/{pid}/_history", _since=since)
    assert [e["response"]["etag"] for e in instance] == ['W/"2"']
    system = await everything(client, "/_history", _since=since)
    assert [e["fullUrl"] for e in system] == [
        f"{BASE}/Practitioner/{other['id']}",
        f"{BASE}/Patient/{pid}",
    ]
    later = await everything(client, "/_history", _since="2999-01-01T00:00:00Z")
    assert later == []
    # An instant with a zone offset names the same moment.
    offset = since.replace("Z", "+00:00")
    assert await everything(client, "/Patient/_history", _since=offset) == instance


async def test_since_follows_through_paging(client: httpx.AsyncClient) -> None:
    first = await create(client, {"resourceType": "Patient"})
    await tick()
    pid = first["id"]
    versions = [
        await put(client, {"resourceType": "Patient", "id": pid, "birthDate": f"190{n}"})
        for n in range(5)
    ]
    since = versions[0]["meta"]["lastUpdated"]
    expected = [key(e) for e in await everything(client, "/_history", _since=since)]
    assert len(expected) == 5
    bundle = await bundle_at(client, "/_history", _since=since, _count="2")
    seen = [key(e) for e in bundle["entry"]]
    while "next" in links(bundle):
        assert "_since=" in links(bundle)["next"]
        bundle = await bundle_at(client, links(bundle)["next"])
        seen.extend(key(e) for e in bundle["entry"])
    assert seen == expected


async def test_at_returns_the_version_current_at_that_instant(client: httpx.AsyncClient) -> None:
    v1 = await create(client, {"resourceType": "Patient", "gender": "female"})
    pid = v1["id"]
    await tick()
    v2 = await put(client, {"resourceType": "Patient", "id": pid, "gender": "male"})
    await tick()
    v3 = await put(client, {"resourceType": "Patient", "id": pid, "gender": "other"})
    url = f"/Patient/{pid}/_history"
    for version in (v1, v2, v3):
        entries = await everything(client, url, _at=version["meta"]["lastUpdated"])
        assert [e["resource"] for e in entries] == [version]
    before = await everything(client, url, _at="1999-01-01T00:00:00Z")
    assert before == []
    now = await everything(client, url, _at="2999-01-01T00:00:00Z")
    assert [e["response"]["etag"] for e in now] == ['W/"3"']
    system = await everything(client, "/_history", _at=v2["meta"]["lastUpdated"])
    assert [e["resource"] for e in system] == [v2]


async def test_at_shows_a_deletion_as_the_state_then(client: httpx.AsyncClient) -> None:
    pid = (await create(client, {"resourceType": "Patient"}))["id"]
    await tick()
    assert (await client.delete(f"/Patient/{pid}")).status_code == 204
    entries = await everything(client, f"/Patient/{pid}/_history", _at="2999")
    assert [e["request"]["method"] for e in entries] == ["DELETE"]


@pytest.mark.parametrize("name", ["_since", "_at"])
@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "2024-01-01T25:00:00Z"])
async def test_a_bad_instant_is_400_naming_the_parameter(
    client: httpx.AsyncClient, name: str, value: str
) -> None:
    for url in ("/_history", "/Patient/_history"):
        response = await client.get(url, params={name: value})
        assert response.status_code == 400, (url, response.text)
        body = response.json()
        assert body["resourceType"] == "OperationOutcome"
        issue = body["issue"][0]
        assert name in issue["diagnostics"]
        assert issue.get("expression") == [name]


async def test_an_unknown_history_parameter_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/_history", params={"_sort": "-_lastUpdated"})
    assert response.status_code == 400
    assert "_sort" in response.json()["issue"][0]["diagnostics"]
