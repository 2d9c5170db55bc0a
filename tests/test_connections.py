"""A worker keeps ``KEYWORKER_DB_POOL_SIZE`` PostgreSQL connections and opens no others: half
for the busiest reads, half for everything else. A burst of writes larger than its share waits
for a connection (every write succeeds) instead of opening and closing extra ones, which cost
more than the requests they served."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

FHIR = {"Content-Type": "application/fhir+json"}


def _database(client: httpx.AsyncClient) -> Any:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return transport.app.state.interactions.database  # type: ignore[attr-defined]


async def test_a_burst_of_writes_beyond_the_pool_waits_for_its_connections(
    app_factory: Any, backend: str
) -> None:
    client = await app_factory(db_pool_size=4)
    pool = _database(client).engine.pool
    created = await client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR)
    assert created.status_code == 201, created.text
    subject = {"reference": f"Patient/{created.json()['id']}"}
    peak, busy = 0, True

    async def watch() -> None:
        nonlocal peak
        while busy:
            peak = max(peak, pool.checkedout())
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    teams = [
        {"resourceType": "CareTeam", "status": "active", "subject": subject, "name": f"team {n}"}
        for n in range(24)
    ]
    answers = await asyncio.gather(*(client.post("/CareTeam", json=t, headers=FHIR) for t in teams))
    busy = False
    await watcher
    assert [a.status_code for a in answers] == [201] * len(teams), answers[0].text
    listed = await client.get("/CareTeam?_count=100&_summary=count")
    assert listed.json()["total"] == len(teams)
    if backend == "postgresql":  # SQLite has no pool to size
        assert 1 < peak <= 2, peak  # the write side's half of four, busy and never exceeded
