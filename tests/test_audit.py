"""AuditEvents for requests touching patient data (kept in the audit journal), Provenance for
care-record writes (stored as resources): both searchable with the right scope, and never
changeable through the API."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from service.audit import writer as writer_module
from service.audit.journal import Entry
from service.audit.provenance import CLIENT_SYSTEM, DEFAULT_REASON
from service.audit.writer import AuditWriter
from service.db.tables import audit_event
from tests.authkit import bearer, mint, secure_client
from tests.conftest import BASE
from tests.faults import resources_table_missing

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
    return [
        e["resource"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"
    ]


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
    accountable = await client.get("/CareTeam/$accountable?patient=Patient/p1", headers=reader)
    assert accountable.status_code == 200, accountable.text
    nosy = bearer(await mint(database_url, "system/Practitioner.rs", client_id="nosy"))
    assert (await client.get(f"/CareTeam/{team['id']}", headers=nosy)).status_code == 403

    events = await _found(
        client, database_url, "/AuditEvent?patient=Patient/p1&_count=100", "system/AuditEvent.rs"
    )
    by_client = {(_client_of(e), e["subtype"][0]["code"]): e for e in events if "subtype" in e}
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
    # an operation's answer about one person: its event names that patient too
    asked = [e for e in events if "$accountable" in e["entity"][0]["description"]]
    assert [_client_of(e) for e in asked] == ["gp-system"]

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


async def test_concurrent_updates_each_get_their_version_and_one_provenance(
    app_factory: AppFactory, database_url: str
) -> None:
    """Updates keyworking ignores are written without a lock on PostgreSQL: racing ones must
    still each get their own version, and a lost race must leave no Provenance behind."""
    client, writer = await _setup(app_factory, database_url)
    team = (await client.post("/CareTeam", json=TEAM, headers=writer)).json()
    updates = await asyncio.gather(
        *(
            client.put(
                f"/CareTeam/{team['id']}", json={**team, "name": f"Team {n}"}, headers=writer
            )
            for n in range(8)
        )
    )
    assert [u.status_code for u in updates] == [200] * 8, [u.text for u in updates]
    assert sorted(int(u.json()["meta"]["versionId"]) for u in updates) == list(range(2, 10))
    provenances = await _found(
        client, database_url, f"/Provenance?target=CareTeam/{team['id']}", "system/Provenance.rs"
    )
    targets = sorted(p["target"][0]["reference"] for p in provenances)
    assert targets == sorted(f"CareTeam/{team['id']}/_history/{v}" for v in range(1, 10))
    current = (await client.get(f"/CareTeam/{team['id']}", headers=writer)).json()
    assert current["meta"]["versionId"] == "9"
    last = next(u.json() for u in updates if u.json()["meta"]["versionId"] == "9")
    assert current["name"] == last["name"]


async def test_insecure_mode_is_announced_and_not_audited(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/Patient")
    assert response.headers["x-keyworker-insecure"]
    audit = await client.get("/AuditEvent")
    assert [e for e in audit.json().get("entry", []) if e["search"]["mode"] == "match"] == []


async def test_audit_writer_batches_applies_backpressure_and_retries(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    written: list[list[str]] = []
    failures = [RuntimeError("database away")]

    async def insert(_: Any, batch: list[Entry]) -> None:
        if failures:
            raise failures.pop()
        written.append([event.id for event in batch])

    class Database:
        @contextlib.asynccontextmanager
        async def write(self) -> AsyncIterator[None]:
            yield None

    monkeypatch.setattr(writer_module, "append", insert)
    writer = AuditWriter(
        Database(),  # type: ignore[arg-type]
        batch_size=3,
        max_delay_s=0.05,
        capacity=2,
        retry_delays_s=(0.01,),
    )
    writer.start()
    events = [Entry(str(n), 0, None, b"{}", ()) for n in range(7)]
    for event in events:  # more than the queue holds: submit waits for space, never drops
        await writer.submit(event)
    await writer.stop()
    assert [i for batch in written for i in batch] == [e.id for e in events]
    assert all(len(batch) <= 3 for batch in written)
    assert "could not write a batch of" in caplog.text


async def _events(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[str]:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return [
        e["resource"]["id"]
        for e in response.json().get("entry", [])
        if e["search"]["mode"] == "match"
    ]


async def test_the_audit_journal_answers_read_vread_paging_and_every_parameter(
    app_factory: AppFactory, database_url: str
) -> None:
    client, writer = await _setup(app_factory, database_url)
    for _ in range(3):
        assert (await client.get("/Patient/p1", headers=writer)).status_code == 200
    auditor = bearer(await mint(database_url, "system/AuditEvent.rs", client_id="auditor"))
    await _audit_written(client)
    everything = await _events(client, "/AuditEvent?_count=100", auditor)
    assert len(everything) == 4  # the PUT and three reads, nothing else yet

    # paging newest first, two at a time, with the total
    seen, recorded = [], []
    url: str | None = "/AuditEvent?_sort=-date&_count=2&_total=accurate"
    while url:
        page = (await client.get(url, headers=auditor)).json()
        assert page["total"] == 4
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        recorded += [e["resource"]["recorded"] for e in page.get("entry", [])]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert sorted(seen) == sorted(everything) and len(seen) == 4
    assert recorded == sorted(recorded, reverse=True)
    count = (await client.get("/AuditEvent?_summary=count", headers=auditor)).json()
    assert count["total"] >= 4 and not count.get("entry")

    one = await client.get(f"/AuditEvent/{everything[0]}", headers=auditor)
    assert one.status_code == 200 and one.headers["etag"] == 'W/"1"'
    assert one.json()["id"] == everything[0] and one.json()["meta"]["versionId"] == "1"
    version = await client.get(f"/AuditEvent/{everything[0]}/_history/1", headers=auditor)
    assert version.status_code == 200 and version.json() == one.json()
    for missing in (f"/AuditEvent/{everything[0]}/_history/2", "/AuditEvent/no-such-event"):
        assert (await client.get(missing, headers=auditor)).status_code == 404

    client_id = f"agent:identifier={CLIENT_SYSTEM}|care-system"
    assert len(await _events(client, f"/AuditEvent?{client_id}&_count=100", auditor)) == 4
    assert await _events(client, "/AuditEvent?agent:identifier=|care-system", auditor) == []
    assert await _events(client, "/AuditEvent?agent=Practitioner/x", auditor) == []
    # the auditor's own searches returned events about p1, so they are about p1 too
    for about_p1 in ("entity=p1", "entity=Patient/p1", f"patient={BASE}/Patient/p1"):
        found = await _events(client, f"/AuditEvent?{about_p1}&_count=100", auditor)
        assert set(everything) <= set(found), about_p1
    assert await _events(client, "/AuditEvent?entity=CareTeam/p1", auditor) == []
    assert await _events(client, "/AuditEvent?patient=Patient/p2", auditor) == []
    assert await _events(client, "/AuditEvent?date=lt2000-01-01", auditor) == []
    assert await _events(client, "/AuditEvent?type:not=rest", auditor) == []
    assert await _events(client, f"/AuditEvent?_id={everything[1]}", auditor) == [everything[1]]


async def test_audit_events_are_outside_history_includes_and_has(
    app_factory: AppFactory, database_url: str
) -> None:
    client, writer = await _setup(app_factory, database_url)
    assert (await client.get("/Patient/p1", headers=writer)).status_code == 200
    await _audit_written(client)
    everything = bearer(await mint(database_url, "system/*.rs"))
    history = (await client.get("/_history?_count=100", headers=everything)).json()
    types = {e["resource"]["resourceType"] for e in history["entry"] if "resource" in e}
    assert "Patient" in types and "AuditEvent" not in types
    for path in (
        "/Patient?_revinclude=AuditEvent:patient",
        "/AuditEvent?_include=AuditEvent:patient",
        "/AuditEvent?_include=*",
        "/Patient?_has:AuditEvent:patient:type=rest",
        "/AuditEvent?_sort=type",
        "/AuditEvent?patient.name=Audited",
    ):
        refused = await client.get(path, headers=everything)
        assert refused.status_code == 400, (path, refused.text)
        issue = refused.json()["issue"][0]
        assert issue["code"] in ("not-supported", "value") and issue["diagnostics"]
    metadata = (await client.get("/metadata")).json()["rest"][0]["resource"]
    audit = next(r for r in metadata if r["type"] == "AuditEvent")
    assert {i["code"] for i in audit["interaction"]} == {"read", "vread", "search-type"}
    patient = next(r for r in metadata if r["type"] == "Patient")
    assert not any(v.startswith("AuditEvent:") for v in patient.get("searchRevInclude", []))


async def test_a_patient_token_sees_only_its_own_patients_audit_events(
    app_factory: AppFactory, database_url: str
) -> None:
    client, writer = await _setup(app_factory, database_url)
    other = {"resourceType": "Patient", "id": "p2", "name": [{"family": "Other"}]}
    assert (await client.put("/Patient/p2", json=other, headers=writer)).status_code == 201
    await _audit_written(client)
    auditor = bearer(await mint(database_url, "system/AuditEvent.rs"))
    of_p2 = await _events(client, "/AuditEvent?patient=p2", auditor)
    assert len(of_p2) == 1
    own = bearer(await mint(database_url, "patient/AuditEvent.rs", patient="p1"))
    visible = await _events(client, "/AuditEvent?_count=100", own)
    assert visible and of_p2[0] not in visible
    assert await _events(client, "/AuditEvent?patient=p2", own) == []
    assert (await client.get(f"/AuditEvent/{of_p2[0]}", headers=own)).status_code == 404
    assert (await client.get(f"/AuditEvent/{visible[0]}", headers=own)).status_code == 200


async def test_a_request_naming_an_overlong_id_is_still_audited(
    app_factory: AppFactory, database_url: str
) -> None:
    client, writer = await _setup(app_factory, database_url)
    long_id = "x" * 600
    assert (await client.get(f"/CareTeam/{long_id}", headers=writer)).status_code in (400, 404)
    auditor = bearer(await mint(database_url, "system/AuditEvent.rs", client_id="auditor"))
    await _audit_written(client)
    response = await client.get(
        f"/AuditEvent?agent:identifier={CLIENT_SYSTEM}|care-system&_count=100", headers=auditor
    )
    events = [
        e["resource"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"
    ]
    refused = [e for e in events if e["outcome"] == "4"]
    assert len(events) == 2 and len(refused) == 1  # the PUT, and the refused read
    assert {"reference": f"CareTeam/{long_id}"} in [e.get("what") for e in refused[0]["entity"]]


async def test_journal_rows_keep_the_facts_and_older_rows_are_served_as_stored(
    app_factory: AppFactory, database_url: str
) -> None:
    client, _ = await _setup(app_factory, database_url)
    await _audit_written(client)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            rows = (await connection.execute(select(audit_event.c.id, audit_event.c.content))).all()
            # the PUT's row holds its facts, a fraction of the event it is served as
            (event_id, facts), *_ = rows
            assert bytes(facts)[:1] == b"[" and len(facts) < 400
            older = {  # a whole event, as the resource tables held them before migration 0004
                "resourceType": "AuditEvent",
                "id": "older",
                "type": {
                    "system": "http://dicom.nema.org/resources/ontology/DCM",
                    "code": "110100",
                },
                "recorded": "2024-01-01T00:00:00Z",
                "outcomeDesc": "as stored",
                "agent": [{"who": {"display": "an older client"}, "requestor": True}],
                "source": {"observer": {"display": "Keyworker FHIR"}},
            }
            await connection.execute(
                insert(audit_event).values(
                    id="older", recorded=1, client_id=None, content=orjson.dumps(older)
                )
            )
    finally:
        await engine.dispose()
    auditor = bearer(await mint(database_url, "system/AuditEvent.rs", client_id="auditor"))
    served = await client.get(f"/AuditEvent/{event_id}", headers=auditor)
    assert served.status_code == 200, served.text
    event = served.json()
    assert event["id"] == event_id and event["meta"]["versionId"] == "1"
    assert event["action"] == "U" and _client_of(event) == "care-system"
    assert {"reference": "Patient/p1"} in [e.get("what") for e in event["entity"]]
    assert len(served.content) > 3 * len(facts)
    found = await _found(client, database_url, "/AuditEvent?_id=older", "system/AuditEvent.rs")
    assert found == [older]


async def test_a_request_that_fails_with_a_500_is_audited_as_a_serious_failure(
    app_factory: AppFactory, database_url: str
) -> None:
    client, writer = await _setup(app_factory, database_url)
    async with resources_table_missing(database_url):
        # one request answered before FastAPI (a read), one by its routers (history)
        for path in ("/Patient/p1", "/Patient/p1/_history"):
            failed = await client.get(path, headers=writer)
            assert failed.status_code == 500, failed.text
            assert failed.json()["issue"][0]["code"] == "exception"
    events = await _found(
        client, database_url, "/AuditEvent?patient=Patient/p1&_count=100", "system/AuditEvent.rs"
    )
    serious = [e for e in events if e["outcome"] == "8"]
    assert sorted(e["subtype"][0]["code"] for e in serious) == ["history-instance", "read"]
    assert all(e["outcomeDesc"] == "HTTP 500" for e in serious)
    assert {_client_of(e) for e in serious} == {"care-system"}
