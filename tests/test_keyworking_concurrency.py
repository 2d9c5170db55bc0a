"""One accountable professional per patient, even when several processes write at once.

Each writer is a separate app with its own engine and connection pool — as separate service
processes are — and all PUT, at the same moment, a different CareTeam that makes a different
professional accountable for the same patient. Exactly one may succeed; the others get 422.
On PostgreSQL this is what the per-patient advisory lock buys: without it, each transaction
checks before the others commit and all of them succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from tests.keyworking_world import build, care_team, ok, participant, put

WRITERS = 6


async def test_racing_writers_cannot_both_add_an_accountable_professional(
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    clients = [await app_factory() for _ in range(WRITERS)]
    await build(clients[0])
    for round_ in range(3):
        patient = f"pat-race-{round_}"
        await ok(clients[0], {"resourceType": "Patient", "active": True}, patient)
        members = ("PractitionerRole/r-gp", "PractitionerRole/r-gp2")
        bodies = [
            care_team(
                [participant("accountable-professional", members[n % 2])], f"Patient/{patient}"
            )
            for n in range(WRITERS)
        ]
        responses = await asyncio.gather(
            *(
                put(c, b, f"ct-{patient}-{n}")
                for n, (c, b) in enumerate(zip(clients, bodies, strict=True))
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [422] * (WRITERS - 1), [r.text for r in responses]
        found = await clients[0].get("/CareTeam", params={"subject": f"Patient/{patient}"})
        assert found.json().get("total", len(found.json().get("entry", []))) == 1
