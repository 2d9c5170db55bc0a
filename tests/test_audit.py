"""AuditEvents for requests touching patient data, Provenance for care-record writes: both
stored as resources, searchable with the right scope, and never changeable through the API."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from service.audit import writer as writer_module
from service.audit.provenance import CLIENT_SYSTEM, DEFAULT_REASON
from service.audit.writer import AuditWriter
from service.storage.repository import NewResource
from tests.authkit import bearer, mint, secure_client

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
TEAM = {"resourceType": "CareTeam", "status": "active", "subject": {"reference": "Patient/p1"}}


async def _setup(
    app_factory: AppFactory, database_url: str
) -> tuple[httpx.AsyncClient, dict[str, str]]:
    client = await secure_client(app_factory)
    writer = bearer(await mint(database_url, "system/*.cruds", client_id="care-system"))
    body = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Audited"}]}
    assert (await client.put("/Patient/p1", json=body, headers=writer)).status_code == 201
    return client, writer


async def _found(
    client: httpx.AsyncClient, database_url: str, path: str, scope: str
) -> list[dict[str, Any]]:
    reader = bearer(await mint(database_url, scope, client_id="auditor"))
    await _audit_written(client)
    response = await client.get(path, headers=reader)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json()["entry"] if e["search"]["mode"] == "match"]


async def _audit_written(client: httpx.AsyncClient) -> None:
    """AuditEvents are written in batches after the response: wait for the queued ones."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    await transport.app.state.audit.flush()  # type: ignore[attr-defined]


def _client_of(event: dict[str, Any]) -> str | None:
    return event["agent"][0]["who"].get("identifier", {}).get("value")


async def test_requests_write_audit_events_naming_who_what_patient_and_outcome(
    app_factory: AppFactory, database_url: str
) -> None:
    client, writer = await _setup(app_factory, database_url)
    team = (await client.post("/CareTeam", json=TEAM, headers=writer)).json()
    reader = bearer(await mint(database_url, "system/*.rs", client_id="gp-system"))
    assert (await client.get(f"/CareTeam/{team['id']}", headers=reader)).status_code == 200
    assert (await client.get("/CareTeam?status=active", headers=reader)).status_code == 200
    nosy = bearer(await mint(database_url, "system/Practitioner.rs", client_id="nosy"))
    assert (await client.get(f"/CareTeam/{team['id']}", headers=nosy)).status_code == 403

    events = await _found(
        client, database_url, "/AuditEvent?patient=Patient/p1&_count=100", "system/AuditEvent.rs"
    )
    by_client = {(_client_of(e), e["subtype"][0]["code"]): e for e in events}
    read = by_client[("gp-system", "read")]
    assert read["action"] == "R" and read["outcome"] == "0"
    assert {"reference": f"CareTeam/{team['id']}"} in [e.get("what") for e in read["entity"]]
    patient_entity = next(e for e in read["entity"] if e.get("role", {}).get("code") == "1")
    assert patient_entity["what"] == {"reference": "Patient/p1"}
    assert read["agent"][0]["network"]["address"]
    assert read["recorded"]
    search = by_client[("gp-system", "search-type")]
    query = next(e["query"] for e in search["entity"] if "query" in e)
    assert base64.b64decode(query).decode() == "status=active"
    created = by_client[("care-system", "create")]
    assert created["action"] == "C"

    refused = await _found(
        client, database_url, f"/AuditEvent?entity=CareTeam/{team['id']}", "system/AuditEvent.rs"
    )
    assert any(_client_of(e) == "nosy" and e["outcome"] == "4" for e in refused)
    typed = await _found(
        client,
        database_url,
        "/AuditEvent?type=rest&date=ge2020-01-01&_count=100",
        "system/AuditEvent.rs",
    )
    assert len(typed) >= len(events)


async def test_audit_events_need_their_scope_and_cannot_be_changed(
    app_factory: AppFactory, database_url: str
) -> None:
    client, writer = await _setup(app_factory, database_url)
    assert (await client.get("/Patient/p1", headers=writer)).status_code == 200
    not_auditor = bearer(await mint(database_url, "system/Patient.rs system/CareTeam.cruds"))
    assert (await client.get("/AuditEvent", headers=not_auditor)).status_code == 403
    events = await _found(client, database_url, "/AuditEvent", "system/AuditEvent.rs")
    event_id = events[0]["id"]
    everything = bearer(await mint(database_url, "system/*.cruds system/*.*"))
    for response in (
        await client.put(f"/AuditEvent/{event_id}", json=events[0], headers=everything),
        await client.delete(f"/AuditEvent/{event_id}", headers=everything),
        await client.post("/AuditEvent", json=events[0], headers=everything),
        await client.patch(f"/AuditEvent/{event_id}", json=[], headers=everything),
        await client.delete(f"/Provenance/{event_id}", headers=everything),
    ):
        assert response.status_code == 405, response.text
        assert response.json()["resourceType"] == "OperationOutcome"


async def test_care_team_writes_record_provenance_with_reason(
    app_factory: AppFactory, database_url: str
) -> None:
    client, writer = await _setup(app_factory, database_url)
    team = (await client.post("/CareTeam", json=TEAM, headers=writer)).json()
    why = {**writer, "X-Provenance": "Key worker rotated at annual review"}
    updated = await client.put(
        f"/CareTeam/{team['id']}", json={**team, "status": "inactive"}, headers=why
    )
    assert updated.status_code == 200
    assert (await client.delete(f"/CareTeam/{team['id']}", headers=writer)).status_code == 204
    assert (await client.get("/Patient/p1", headers=writer)).status_code == 200

    provenances = await _found(
        client, database_url, f"/Provenance?target=CareTeam/{team['id']}", "system/Provenance.rs"
    )
    by_version = {p["target"][0]["reference"].rsplit("/", 1)[1]: p for p in provenances}
    assert sorted(by_version) == ["1", "2", "3"]
    assert by_version["1"]["activity"]["coding"][0]["code"] == "CREATE"
    assert by_version["2"]["reason"][0]["text"] == "Key worker rotated at annual review"
    assert by_version["3"]["activity"]["coding"][0]["code"] == "DELETE"
    assert by_version["1"]["reason"][0]["text"] == DEFAULT_REASON
    author = by_version["2"]["agent"][0]["who"]["identifier"]
    assert author == {"system": CLIENT_SYSTEM, "value": "care-system"}
    assert by_version["2"]["target"][0]["reference"] == f"CareTeam/{team['id']}/_history/2"
    without_scope = bearer(await mint(database_url, "system/CareTeam.rs"))
    assert (await client.get("/Provenance", headers=without_scope)).status_code == 403


async def test_insecure_mode_is_announced_and_not_audited(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/Patient")
    assert response.headers["x-keyworker-insecure"]
    audit = await client.get("/AuditEvent")
    assert [e for e in audit.json()["entry"] if e["search"]["mode"] == "match"] == []


async def test_audit_writer_batches_applies_backpressure_and_retries(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    written: list[list[str]] = []
    failures = [RuntimeError("database away")]

    async def insert(_: Any, batch: list[NewResource]) -> None:
        if failures:
            raise failures.pop()
        written.append([event.id for event in batch])

    class Database:
        @contextlib.asynccontextmanager
        async def write(self) -> AsyncIterator[None]:
            yield None

    monkeypatch.setattr(writer_module, "insert_new", insert)
    writer = AuditWriter(
        Database(),  # type: ignore[arg-type]
        batch_size=3,
        max_delay_s=0.05,
        capacity=2,
        retry_delays_s=(0.01,),
    )
    writer.start()
    events = [NewResource("AuditEvent", str(n), b"{}", 0, {}) for n in range(7)]
    for event in events:  # more than the queue holds: submit waits for space, never drops
        await writer.submit(event)
    await writer.stop()
    assert [i for batch in written for i in batch] == [e.id for e in events]
    assert all(len(batch) <= 3 for batch in written)
    assert "could not write a batch of" in caplog.text
