"""Real failures of the database under a running service, for the tests of what a request
that fails with a 500 leaves behind (its answer, its connection, its AuditEvent).

The resources table is renamed away and back: every statement on it fails in the database,
on SQLite and PostgreSQL alike (both look the name up again, prepared statements too), while
everything else (the audit journal, the connection to the client) works on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.settings import normalise_database_url


async def _rename(database_url: str, old: str, new: str) -> None:
    engine = create_async_engine(normalise_database_url(database_url))
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    finally:
        await engine.dispose()


@asynccontextmanager
async def resources_table_missing(database_url: str) -> AsyncIterator[None]:
    """Within the block, any statement reading or writing resources fails."""
    await _rename(database_url, "resource", "resource_missing")
    try:
        yield
    finally:
        await _rename(database_url, "resource_missing", "resource")
