"""Upgrading a database that holds AuditEvents stored as resources (before the audit journal):
they move to the journal with their ids, times, content and search terms, and leave the
resource tables."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from service.audit.provenance import CLIENT_SYSTEM
from service.db.migrate import upgrade
from service.db.tables import (
    audit_event,
    audit_event_entity,
    idx_reference,
    resource,
    resource_version,
)
from tests.conftest import POSTGRES_ADMIN_URL, admin

EVENT = {
    "resourceType": "AuditEvent",
    "id": "old-event",
    "meta": {"versionId": "1", "lastUpdated": "2026-11-30T10:00:00.000Z"},
    "recorded": "2026-11-30T10:00:00.000Z",
    "agent": [{"who": {"identifier": {"system": CLIENT_SYSTEM, "value": "gp-system"}}}],
    "entity": [{"what": {"reference": "CareTeam/ct1"}}, {"what": {"reference": "Patient/p1"}}],
}


@pytest.fixture
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'before-journal.sqlite3'}"
        return
    name = f"keyworker_migration_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_stored_audit_events_move_into_the_journal(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database, "0003")
    engine = create_async_engine(empty_database)
    content = orjson.dumps(EVENT)
    moment = 1_796_032_800_000_000
    row = {"type": "AuditEvent", "id": "old-event", "version": 1, "last_updated": moment}
    row.update(deleted=False, content=content)
    async with engine.begin() as connection:
        pk = await connection.execute(insert(resource).values(row).returning(resource.c.pk))
        resource_pk = pk.scalar_one()
        await connection.execute(
            insert(resource_version).values({**row, "resource_pk": resource_pk, "method": "POST"})
        )
        await connection.execute(
            insert(idx_reference).values(
                resource_pk=resource_pk,
                resource_type="AuditEvent",
                param="patient",
                target_type="Patient",
                target_id="p1",
            )
        )
    await asyncio.to_thread(upgrade, empty_database)
    async with engine.connect() as connection:
        journal = (await connection.execute(select(audit_event))).all()
        assert [(r.id, r.recorded, r.client_id, bytes(r.content)) for r in journal] == [
            ("old-event", moment, "gp-system", content)
        ]
        references = await connection.scalars(select(audit_event_entity.c.reference))
        assert sorted(references) == ["CareTeam/ct1", "Patient/p1"]
        for table in (resource, resource_version, idx_reference):
            assert await connection.scalar(select(func.count()).select_from(table)) == 0
    await engine.dispose()
