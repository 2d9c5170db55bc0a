"""Upgrading a database whose records were stored before the R4 demographic parameters: the
migration indexes them, so a patient stored then is found by phone, address and the rest."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from service.app import create_app
from service.db.migrate import upgrade
from service.db.tables import idx_string, resource, resource_version
from tests.conftest import BASE, POSTGRES_ADMIN_URL, admin, settings_for

PATIENT = {
    "resourceType": "Patient",
    "id": "old-patient",
    "meta": {"versionId": "1", "lastUpdated": "2026-11-30T10:00:00.000Z"},
    "name": [{"family": "Smyth"}],
    "telecom": [{"system": "phone", "value": "07700 900123"}],
    "address": [{"city": "Leeds", "postalCode": "LS2 9JT"}],
}


@pytest.fixture
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'before-demographics.sqlite3'}"
        return
    name = f"keyworker_migration_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _store_as_before(database_url: str) -> None:
    """The patient as the previous revision stored it: its row, and its name's index rows."""
    engine = create_async_engine(database_url)
    row = {"type": "Patient", "id": "old-patient", "version": 1, "deleted": False}
    row.update(last_updated=1_796_032_800_000_000, content=orjson.dumps(PATIENT))
    async with engine.begin() as connection:
        created = await connection.execute(insert(resource).values(row).returning(resource.c.pk))
        pk = created.scalar_one()
        await connection.execute(
            insert(resource_version).values({**row, "resource_pk": pk, "method": "PUT"})
        )
        await connection.execute(
            insert(idx_string),
            [
                {"resource_pk": pk, "resource_type": "Patient", "param": name}
                | {"norm": "smyth", "exact": "Smyth"}
                for name in ("name", "family")
            ],
        )
    await engine.dispose()


async def test_records_stored_before_are_found_by_the_new_parameters(
    empty_database: str,
) -> None:
    await asyncio.to_thread(upgrade, empty_database, "0007")
    await _store_as_before(empty_database)
    await asyncio.to_thread(upgrade, empty_database)
    app = create_app(settings_for(empty_database))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            for query in (
                "/Patient?phone=07700 900123",
                "/Patient?address-postalcode=LS2",
                "/Patient?address-city=leeds",
                "/Patient?phonetic=smith",
                "/Patient?deceased=false",
                "/Patient?family=smyth",
            ):
                response = await client.get(query)
                assert response.status_code == 200, response.text
                found = [e["resource"]["id"] for e in response.json().get("entry", [])]
                assert found == ["old-patient"], query
