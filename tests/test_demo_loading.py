"""The demo data set loads through the write path and is served back over HTTP."""

from __future__ import annotations

import httpx

from service.demo_loader import load_demo
from tests.conftest import settings_for


async def test_demo_loads_once_and_answers_the_readme_calls(
    client: httpx.AsyncClient, database_url: str
) -> None:
    settings = settings_for(database_url)
    loaded = await load_demo(settings, only_if_empty=True)
    assert loaded is not None and loaded > 50
    assert await load_demo(settings, only_if_empty=True) is None
    team = await client.get("/CareTeam/ct-amara-okafor")
    assert team.status_code == 200
    assert team.json()["subject"]["reference"] == "Patient/pat-amara-okafor"
    found = await client.get(
        "/CareTeam?subject:identifier=https://fhir.nhs.uk/Id/nhs-number|9990001073"
    )
    assert found.status_code == 200
    ids = [e["resource"]["id"] for e in found.json()["entry"]]
    assert ids == ["ct-amara-okafor"]
    # Re-loading everything by id is a no-op: no new versions appear.
    assert await load_demo(settings) == loaded
    assert (await client.get("/CareTeam/ct-amara-okafor")).json()["meta"]["versionId"] == "1"
