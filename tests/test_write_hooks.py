"""Write hooks: checks before a write, companions stored with it, work in its transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_mappings.issues import Issue
from fhir_mappings.keyworking import projection
from service.audit.provenance import provenance
from service.audit.store import first_version
from service.errors import Unprocessable
from service.storage.repository import NewResource
from service.write_hooks import SERVER_WRITE, WriteHook, Written

FHIR = {"Content-Type": "application/fhir+json"}


def _refuse_unknown_gender(written: Written) -> None:
    if written.body and written.body.get("gender") == "unknown":
        raise Unprocessable(issues=[Issue("refused by hook", expression=("Patient.gender",))])


async def _refused_whole(
    client: httpx.AsyncClient, pid: str, db_state: Callable[[], Awaitable[dict[str, int]]]
) -> None:
    """An update to an unknown gender is refused (422, located) and writes nothing."""
    before = await db_state()
    refused = await client.put(
        f"/Patient/{pid}",
        json={"resourceType": "Patient", "id": pid, "gender": "unknown"},
        headers=FHIR,
    )
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["Patient.gender"]
    assert await db_state() == before


class _Refusing(WriteHook):
    """Records every write it sees in the transaction and refuses an unknown gender there,
    after the write's rows are in."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, bool]] = []

    def needs_database(self, batch: Sequence[Written]) -> bool:
        return True

    async def write_batch(self, connection: AsyncConnection, batch: Sequence[Written]) -> None:
        for written in batch:
            self.seen.append(
                (written.stored.reference, written.stored.version, written.body is None)
            )
            _refuse_unknown_gender(written)


async def test_hook_sees_every_write_and_can_refuse_it_whole(
    client: httpx.AsyncClient,
    db_state: Callable[[], Awaitable[dict[str, int]]],
) -> None:
    hook = _Refusing()
    client._transport.app.state.interactions.hooks = (hook,)  # type: ignore[attr-defined]
    created = await client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR)
    pid = created.json()["id"]
    await _refused_whole(client, pid, db_state)
    assert (await client.get(f"/Patient/{pid}")).json()["meta"]["versionId"] == "1"
    assert (await client.delete(f"/Patient/{pid}")).status_code == 204
    assert hook.seen == [
        (f"Patient/{pid}", 1, False),
        (f"Patient/{pid}", 2, False),
        (f"Patient/{pid}", 2, True),
    ]


class _Companion(WriteHook):
    """Stores a Provenance beside every Patient written, or refuses the write before it."""

    def check(self, batch: Sequence[Written]) -> None:
        for written in batch:
            _refuse_unknown_gender(written)

    def companions(self, batch: Sequence[Written]) -> list[NewResource]:
        return [
            first_version(provenance(w, SERVER_WRITE), w.stored.last_updated, "http://test")
            for w in batch
        ]


async def test_companions_are_stored_with_the_write_or_not_at_all(
    client: httpx.AsyncClient,
    db_state: Callable[[], Awaitable[dict[str, int]]],
) -> None:
    client._transport.app.state.interactions.hooks = (_Companion(),)  # type: ignore[attr-defined]
    pid = (await client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR)).json()[
        "id"
    ]
    updated = await client.put(
        f"/Patient/{pid}",
        json={"resourceType": "Patient", "id": pid, "gender": "male"},
        headers=FHIR,
    )
    assert updated.status_code == 200, updated.text
    await _refused_whole(client, pid, db_state)
    assert (await client.delete(f"/Patient/{pid}")).status_code == 204
    found = (await client.get("/Provenance", params={"_count": "50"})).json()
    targets = [e["resource"]["target"][0]["reference"] for e in found.get("entry", [])]
    assert sorted(t for t in targets if t.startswith(f"Patient/{pid}/")) == [
        f"Patient/{pid}/_history/{v}" for v in (1, 2, 3)
    ]


async def test_a_new_care_team_is_projected_once_for_every_step(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deciding whether the write needs a transaction, and the rows stored with it, share one
    projection of the team."""
    calls: list[str] = []
    original = projection.care_team

    def counted(team: str, body: dict[str, Any]) -> list[Any]:
        calls.append(team)
        return original(team, body)

    monkeypatch.setattr(projection, "care_team", counted)
    pid = (await client.post("/Patient", json={"resourceType": "Patient"}, headers=FHIR)).json()[
        "id"
    ]
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": f"Patient/{pid}"},
    }
    created = await client.post("/CareTeam", json=team, headers=FHIR)
    assert created.status_code == 201, created.text
    assert calls == [created.json()["id"]]
