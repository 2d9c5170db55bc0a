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
    database = _database(client)
    created = await client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR)
    assert created.status_code == 201, created.text
    subject = {"reference": f"Patient/{created.json()['id']}"}
    peaks = {"write": 0, "read": 0}
    busy = True

    async def watch() -> None:
        while busy:
            peaks["write"] = max(peaks["write"], database.engine.pool.checkedout())
            peaks["read"] = max(peaks["read"], database._reads.opened)
            await asyncio.sleep(0)

    def team(n: int) -> dict[str, Any]:
        return {"resourceType": "CareTeam", "status": "active", "subject": subject, "name": f"{n}"}

    watcher = asyncio.create_task(watch())
    # Creates by POST need no transaction here (written as one statement on the read side);
    # creates by PUT take the write side's transaction.
    posted = await asyncio.gather(
        *(client.post("/CareTeam", json=team(n), headers=FHIR) for n in range(24))
    )
    put = await asyncio.gather(
        *(
            client.put(f"/CareTeam/burst-{n}", json={**team(n), "id": f"burst-{n}"}, headers=FHIR)
            for n in range(24)
        )
    )
    busy = False
    await watcher
    assert [a.status_code for a in posted + put] == [201] * 48, (posted + put)[0].text
    listed = await client.get("/CareTeam?_count=100&_summary=count")
    assert listed.json()["total"] == 48
    if backend == "postgresql":  # SQLite has no pool to size
        # Each side's half of four, busy and never exceeded.
        assert 1 < peaks["write"] <= 2, peaks
        assert 1 < peaks["read"] <= 2, peaks
