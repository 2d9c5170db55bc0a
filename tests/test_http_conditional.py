"""HTTP as peers speak it on reads: conditional reads (304), HEAD, ``_summary``/``_elements``
on a read, the DSTU2-era ``application/json+fhir`` media type, and a PUT that must name its id.

Reads by id are answered by the hot paths, vreads by the router: both are tried.
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any

import httpx
import orjson
import pytest

from service.search.dates import from_us

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def _patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">P</div>'},
        "identifier": [{"system": NHS, "value": "9434765919"}],
        "active": True,
        "name": [{"family": "Okafor", "given": ["Ada"]}],
        "gender": "female",
        "maritalStatus": {"text": "Single"},
    }


async def _created(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.post("/Patient", json=_patient())
    assert response.status_code == 201, response.text
    return response


def _outcome(response: httpx.Response, status: int, expression: str) -> None:
    assert response.status_code == status, response.text
    issue = response.json()["issue"][0]
    assert issue["severity"] == "error"
    assert issue["expression"] == [expression]


@pytest.mark.parametrize("path", ["/Patient/{id}", "/Patient/{id}/_history/1"])
async def test_if_none_match_answers_304_with_the_version_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    made = await _created(client)
    url = path.format(id=made.json()["id"])
    plain = await client.get(url)
    assert plain.status_code == 200
    for current in ('W/"1"', '"1"', "*", 'W/"7", W/"1"'):
        same = await client.get(url, headers={"If-None-Match": current})
        assert same.status_code == 304, (current, same.text)
        assert same.content == b""
        assert same.headers["etag"] == 'W/"1"'
        assert same.headers["last-modified"] == plain.headers["last-modified"]
        assert "content-type" not in same.headers
    other = await client.get(url, headers={"If-None-Match": 'W/"2"'})
    assert other.status_code == 200
    assert other.content == plain.content


async def test_if_modified_since_answers_304_unless_changed_since(
    client: httpx.AsyncClient,
) -> None:
    made = await _created(client)
    url = f"/Patient/{made.json()['id']}"
    modified = made.headers["last-modified"]
    unchanged = await client.get(url, headers={"If-Modified-Since": modified})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == 'W/"1"'
    assert unchanged.headers["last-modified"] == modified
    earlier = format_datetime(from_us(0), usegmt=True)
    changed = await client.get(url, headers={"If-Modified-Since": earlier})
    assert changed.status_code == 200
    assert changed.json()["id"] == made.json()["id"]
    # If-None-Match decides when both are sent (RFC 9110 13.1.3); a bad date is ignored
    both = await client.get(url, headers={"If-None-Match": 'W/"9"', "If-Modified-Since": modified})
    assert both.status_code == 200
    assert (await client.get(url, headers={"If-Modified-Since": "soon"})).status_code == 200


async def test_head_answers_the_get_headers_without_a_body(client: httpx.AsyncClient) -> None:
    made = await _created(client)
    url = f"/Patient/{made.json()['id']}"
    for path in (url, f"{url}/_history/1"):
        get = await client.get(path)
        head = await client.head(path)
        assert head.status_code == 200, path
        assert head.content == b"", path
        for name in ("content-type", "content-length", "etag", "last-modified"):
            assert head.headers[name] == get.headers[name], (path, name)
    search = await client.head("/Patient", params={"family": "Okafor"})
    assert search.status_code == 200
    assert search.content == b""
    assert search.headers["content-type"].startswith("application/fhir+json")
    assert int(search.headers["content-length"]) > 0
    missing = await client.head("/Patient/nobody")
    assert missing.status_code == 404
    assert missing.content == b""


async def test_a_plain_read_serves_the_stored_bytes(client: httpx.AsyncClient) -> None:
    made = await _created(client)
    read = await client.get(f"/Patient/{made.json()['id']}")
    assert read.content == made.content
    assert "tag" not in read.json()["meta"]
    by_format = await client.get(f"/Patient/{made.json()['id']}", params={"_format": "json"})
    assert by_format.content == made.content


@pytest.mark.parametrize(
    ("params", "kept"),
    [
        ({"_summary": "true"}, {"identifier", "active", "name", "gender"}),
        ({"_summary": "text"}, {"text"}),
        ({"_summary": "data"}, {"identifier", "active", "name", "gender", "maritalStatus"}),
        ({"_elements": "name,gender"}, {"name", "gender"}),
    ],
    ids=["summary-true", "summary-text", "summary-data", "elements"],
)
async def test_summary_and_elements_on_a_read_are_marked_subsetted(
    client: httpx.AsyncClient, params: dict[str, str], kept: set[str]
) -> None:
    made = await _created(client)
    for path in (f"/Patient/{made.json()['id']}", f"/Patient/{made.json()['id']}/_history/1"):
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"resourceType", "id", "meta", *kept}, (path, params)
        assert body["meta"]["tag"] == [SUBSETTED]
        assert body["meta"]["versionId"] == "1"
        assert response.headers["etag"] == 'W/"1"'
    whole = await client.get(f"/Patient/{made.json()['id']}", params={"_summary": "false"})
    assert whole.json() == made.json()


async def test_summary_count_on_a_read_is_refused(client: httpx.AsyncClient) -> None:
    made = await _created(client)
    for value in ("count", "maybe"):
        response = await client.get(f"/Patient/{made.json()['id']}", params={"_summary": value})
        _outcome(response, 400, "_summary")


async def test_json_plus_fhir_is_accepted_and_answered(client: httpx.AsyncClient) -> None:
    dstu2 = "application/json+fhir"
    made = await client.post(
        "/Patient", content=orjson.dumps(_patient()), headers={"Content-Type": dstu2}
    )
    assert made.status_code == 201, made.text
    url = f"/Patient/{made.json()['id']}"
    asked = await client.get(url, headers={"Accept": dstu2})
    assert asked.status_code == 200
    assert asked.headers["content-type"].startswith(dstu2)
    by_format = await client.get(url, params={"_format": dstu2})
    assert by_format.headers["content-type"].startswith(dstu2)
    by_json = await client.get(url, params={"_format": "json"})
    assert by_json.headers["content-type"].startswith("application/fhir+json")


async def test_a_put_without_an_id_is_400_plain_and_in_bundles(client: httpx.AsyncClient) -> None:
    made = await _created(client)
    pid = made.json()["id"]
    plain = await client.put(f"/Patient/{pid}", json=_patient())
    _outcome(plain, 400, "Patient.id")
    brand_new = await client.put("/Patient/brand-new", json=_patient())
    _outcome(brand_new, 400, "Patient.id")
    for kind in ("transaction", "batch"):
        bundle = {
            "resourceType": "Bundle",
            "type": kind,
            "entry": [
                {"resource": _patient(), "request": {"method": "PUT", "url": f"Patient/{pid}"}}
            ],
        }
        _outcome(await client.post("", json=bundle), 400, "Bundle.entry[0].resource.id")
    assert (await client.get(f"/Patient/{pid}")).json()["meta"]["versionId"] == "1"
    assert (await client.get("/Patient/brand-new")).status_code == 404
