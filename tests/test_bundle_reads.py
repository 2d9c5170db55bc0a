"""GET entries (read, vread, search) in batch and transaction Bundles, as peers run them: in
R4's order (a transaction's reads after its writes, which they see), each under the caller's
reach, a search's entry carrying its searchset Bundle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.authkit import bearer, mint, secure_client

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def _patient(pid: str, nhs: str, family: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family}],
    }


def _get(url: str) -> dict[str, Any]:
    return {"request": {"method": "GET", "url": url}}


def _bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


async def _seed(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
    for pid, nhs, family in (("own", "9434765919", "Okafor"), ("other", "9434765870", "Adeyemi")):
        put = await client.put(f"/Patient/{pid}", json=_patient(pid, nhs, family), headers=headers)
        assert put.status_code == 201, put.text


async def test_a_batch_reads_vreads_and_searches(client: httpx.AsyncClient) -> None:
    await _seed(client)
    bundle = _bundle(
        "batch",
        _get("Patient/own"),
        _get("Patient/other/_history/1"),
        _get("Patient?family=Okafor&_count=5"),
        _get("Patient/nobody"),
        _get("Patient?birthdate=yesterday"),
    )
    response = await client.post("", json=bundle)
    assert response.status_code == 200, response.text
    read, vread, search, missing, bad = response.json()["entry"]
    assert read["response"]["status"] == "200 OK"
    assert read["response"]["etag"] == 'W/"1"'
    assert read["resource"]["name"][0]["family"] == "Okafor"
    assert vread["resource"]["id"] == "other"
    assert search["response"]["status"] == "200 OK"
    found = search["resource"]
    assert found["resourceType"] == "Bundle"
    assert found["type"] == "searchset"
    assert [e["resource"]["id"] for e in found["entry"]] == ["own"]
    assert found["link"][0]["url"].endswith("/Patient?family=Okafor&_count=5")
    assert missing["response"]["status"] == "404"
    assert missing["response"]["outcome"]["issue"][0]["code"] == "not-found"
    assert bad["response"]["status"] == "400"
    assert "birthdate" in bad["response"]["outcome"]["issue"][0]["diagnostics"]


async def test_a_transaction_reads_and_searches_after_its_writes(
    client: httpx.AsyncClient,
) -> None:
    bundle = _bundle(
        "transaction",
        # Listed first, run last (R4: DELETE, POST, PUT, then GET): they see the writes.
        _get("Patient?family=Okafor"),
        {
            "resource": _patient("own", "9434765919", "Okafor"),
            "request": {"method": "PUT", "url": "Patient/own"},
        },
    )
    response = await client.post("", json=bundle)
    assert response.status_code == 200, response.text
    search, put = response.json()["entry"]
    assert put["response"]["status"] == "201 Created"
    assert [e["resource"]["id"] for e in search["resource"]["entry"]] == ["own"]
    missing = await client.post("", json=_bundle("transaction", _get("Patient/nobody")))
    assert missing.status_code == 404
    issue = missing.json()["issue"][0]
    assert issue["code"] == "not-found"
    assert issue["diagnostics"].startswith("Bundle.entry[0] (GET Patient)")


async def test_bundle_reads_keep_to_the_tokens_reach(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await secure_client(app_factory)
    await _seed(client, bearer(await mint(database_url, "system/*.cruds")))
    own = bearer(await mint(database_url, "patient/Patient.rs", patient="own"))
    for kind in ("batch", "transaction"):
        # (a read and a vread of one version apart: a Bundle names each version once, bdl-7)
        for first in ("Patient/own", "Patient/own/_history/1"):
            bundle = _bundle(kind, _get(first), _get("Patient?_count=10"))
            response = await client.post("", json=bundle, headers=own)
            assert response.status_code == 200, response.text
            read, search = response.json()["entry"]
            assert read["resource"]["id"] == "own"
            assert [e["resource"]["id"] for e in search["resource"]["entry"]] == ["own"]
    # Out of reach is 404 in the entry, in the words of a record that does not exist.
    batch = await client.post(
        "",
        json=_bundle("batch", _get("Patient/other"), _get("Patient/other/_history/1")),
        headers=own,
    )
    assert batch.status_code == 200, batch.text
    for entry in batch.json()["entry"]:
        assert entry["response"]["status"] == "404"
        assert "resource" not in entry
        assert "other" in entry["response"]["outcome"]["issue"][0]["diagnostics"]
    refused = await client.post("", json=_bundle("transaction", _get("Patient/other")), headers=own)
    assert refused.status_code == 404, refused.text
    # A type the token may not search is 403 at the entry, before anything runs.
    teams = await client.post(
        "", json=_bundle("batch", _get("CareTeam?status=active")), headers=own
    )
    assert teams.json()["entry"][0]["response"]["status"] == "403"
