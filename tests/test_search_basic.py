"""Search over the index tables: the parameter types conditional interactions rely on."""

from __future__ import annotations

import httpx

FHIR = {"Content-Type": "application/fhir+json"}
NHS = "https://fhir.nhs.uk/Id/nhs-number"


async def _patient(client: httpx.AsyncClient, family: str, nhs: str, born: str) -> str:
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family, "given": ["Sam"]}],
        "birthDate": born,
    }
    response = await client.post("/Patient", json=body, headers=FHIR)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _ids(bundle: dict[str, object]) -> list[str]:
    entries = bundle.get("entry", [])
    assert isinstance(entries, list)
    return [e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"]


async def test_token_string_date_and_reference(client: httpx.AsyncClient) -> None:
    a = await _patient(client, "Müller", "9434765919", "1950-03-04")
    b = await _patient(client, "Mullins", "9434765870", "1988-11-30")
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": f"Patient/{a}"},
    }
    assert (await client.post("/CareTeam", json=team, headers=FHIR)).status_code == 201

    async def ids(query: str) -> list[str]:
        response = await client.get(query)
        assert response.status_code == 200, response.text
        return _ids(response.json())

    assert await ids(f"/Patient?identifier={NHS}|9434765919") == [a]
    assert await ids("/Patient?identifier=9434765870") == [b]
    assert await ids("/Patient?identifier=other|9434765870") == []
    assert await ids("/Patient?family=mul") == [a, b]
    assert await ids("/Patient?family=mull") == [a, b]  # accent-insensitive
    assert await ids("/Patient?family=mulli") == [b]
    assert await ids("/Patient?family:exact=Müller") == [a]
    assert await ids("/Patient?birthdate=lt1960") == [a]
    assert await ids("/Patient?birthdate=1988") == [b]
    assert await ids(f"/Patient?_id={a},{b}") == [a, b]
    assert await ids(f"/CareTeam?patient=Patient/{a}") == await ids(f"/CareTeam?subject={a}")
    assert len(await ids(f"/CareTeam?patient={a}")) == 1
    assert await ids(f"/CareTeam?patient={b}") == []


async def test_paging_and_unknown_parameters(client: httpx.AsyncClient) -> None:
    made = [await _patient(client, f"Page{i}", "9434765919", "2000-01-01") for i in range(5)]
    seen: list[str] = []
    url: str | None = "/Patient?_count=2&_total=accurate"
    while url:
        bundle = (await client.get(url)).json()
        assert bundle["total"] == 5
        seen.extend(_ids(bundle))
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert seen == made
    lenient_headers = {"Prefer": "handling=lenient"}
    lenient = (await client.get("/Patient?nonsense=1", headers=lenient_headers)).json()
    assert lenient["entry"][-1]["search"]["mode"] == "outcome"
    for headers in ({}, {"Prefer": "handling=strict"}):
        strict = await client.get("/Patient?nonsense=1", headers=headers)
        assert strict.status_code == 400
    bad = await client.get("/Patient?birthdate=notadate")
    assert bad.status_code == 400
    assert "birthdate" in bad.json()["issue"][0]["diagnostics"]
