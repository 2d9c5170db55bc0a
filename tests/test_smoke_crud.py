"""First contact: create, read, update, delete a CareTeam over HTTP on each backend."""

from __future__ import annotations

import httpx

FHIR = {"Content-Type": "application/fhir+json"}


async def test_create_read_update_delete(client: httpx.AsyncClient) -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "Okafor", "given": ["Amara"]}]}
    created = await client.post("/Patient", json=patient, headers=FHIR)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": f"Patient/{pid}"},
    }
    created = await client.post("/CareTeam", json=team, headers=FHIR)
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert created.headers["etag"] == 'W/"1"'
    read = await client.get(f"/CareTeam/{tid}")
    assert read.status_code == 200
    assert read.json()["subject"] == {"reference": f"Patient/{pid}"}
    updated = await client.put(
        f"/CareTeam/{tid}", json={**team, "id": tid, "status": "inactive"}, headers=FHIR
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["meta"]["versionId"] == "2"
    assert (await client.delete(f"/CareTeam/{tid}")).status_code == 204
    assert (await client.get(f"/CareTeam/{tid}")).status_code == 410
    history = (await client.get(f"/CareTeam/{tid}/_history")).json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT", "POST"]
