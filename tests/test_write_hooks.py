"""Write hooks run inside the write's transaction: a refusal leaves nothing behind."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_mappings.issues import Issue
from service.errors import Unprocessable
from service.write_hooks import Written

FHIR = {"Content-Type": "application/fhir+json"}


async def test_hook_sees_every_write_and_can_refuse_it_whole(
    client: httpx.AsyncClient,
    db_state: Callable[[], Awaitable[dict[str, int]]],
) -> None:
    seen: list[tuple[str, int, bool]] = []

    async def hook(connection: AsyncConnection, written: Written) -> None:
        seen.append((written.stored.reference, written.stored.version, written.body is None))
        if written.body and written.body.get("gender") == "unknown":
            raise Unprocessable(issues=[Issue("refused by hook", expression=("Patient.gender",))])

    client._transport.app.state.interactions.hooks = (hook,)  # type: ignore[attr-defined]
    created = await client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR)
    pid = created.json()["id"]
    before = await db_state()
    refused = await client.put(
        f"/Patient/{pid}",
        json={"resourceType": "Patient", "id": pid, "gender": "unknown"},
        headers=FHIR,
    )
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["Patient.gender"]
    assert await db_state() == before
    assert (await client.get(f"/Patient/{pid}")).json()["meta"]["versionId"] == "1"
    assert (await client.delete(f"/Patient/{pid}")).status_code == 204
    assert seen == [
        (f"Patient/{pid}", 1, False),
        (f"Patient/{pid}", 2, False),
        (f"Patient/{pid}", 2, True),
    ]
