"""Updates that skip work when nothing searchable or keyworking-relevant changed.

An update writes only the kinds of index rows whose values changed, and the keyworking
projection is left alone when the new version projects as the old one did. These tests pin
the behaviour either side of those shortcuts: what did change is searchable and answered at
once, and what did not change is still found.
"""

from __future__ import annotations

import httpx

from tests.keyworking_world import accountable, build, care_team, ok, participant, parts

FHIR = {"Content-Type": "application/fhir+json"}


async def _team_ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get("/CareTeam", params=params)
    assert response.status_code == 200, response.text
    return [e["resource"]["id"] for e in response.json().get("entry", [])]


async def test_search_follows_updates_whether_or_not_indexed_values_change(
    client: httpx.AsyncClient,
) -> None:
    await build(client)
    team = care_team([participant("keyworker", "PractitionerRole/r-kw")])
    await ok(client, {**team, "name": "First"}, "ct-s")
    await ok(client, {**team, "name": "Renamed"}, "ct-s")  # nothing searchable changed
    assert await _team_ids(client, status="active", participant="PractitionerRole/r-kw") == ["ct-s"]
    moved = care_team([participant("keyworker", "PractitionerRole/r-kw2")], status="inactive")
    await ok(client, moved, "ct-s")  # status and participant changed, subject did not
    assert await _team_ids(client, status="active") == []
    assert await _team_ids(client, participant="PractitionerRole/r-kw") == []
    assert await _team_ids(client, status="inactive", participant="PractitionerRole/r-kw2") == [
        "ct-s"
    ]
    assert await _team_ids(client, subject="Patient/pat-1") == ["ct-s"]
    assert (await client.delete("/CareTeam/ct-s")).status_code in (200, 204)
    assert await _team_ids(client, subject="Patient/pat-1") == []
    await ok(client, moved, "ct-s")  # re-created after the deletion
    assert await _team_ids(client, subject="Patient/pat-1") == ["ct-s"]


async def test_accountable_follows_updates_whether_or_not_participants_change(
    client: httpx.AsyncClient,
) -> None:
    await build(client)
    team = care_team([participant("accountable-professional", "PractitionerRole/r-gp")])
    await ok(client, {**team, "name": "First"}, "ct-a")
    await ok(client, {**team, "name": "Renamed"}, "ct-a")  # projects as before
    (gp,) = parts(await accountable(client, "Patient/pat-1"), "accountable")
    assert gp["member"]["reference"] == "PractitionerRole/r-gp"
    handed = care_team([participant("accountable-professional", "PractitionerRole/r-gp2")])
    await ok(client, {**handed, "name": "Renamed"}, "ct-a")
    (gp,) = parts(await accountable(client, "Patient/pat-1"), "accountable")
    assert gp["member"]["reference"] == "PractitionerRole/r-gp2"
    # A second team naming another accountable professional is still refused after the
    # rename that skipped the projection: the stored projection is the one checked against.
    other = care_team([participant("accountable-professional", "PractitionerRole/r-gp")])
    refused = await client.put("/CareTeam/ct-b", json={**other, "id": "ct-b"}, headers=FHIR)
    assert refused.status_code == 422, refused.text
