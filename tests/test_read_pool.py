"""The read pool (PostgreSQL only; SQLite has none): its connections are bounded, and one that
may still be running a statement, or that the server ended, is never handed to the next
caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextvars import Context

import pytest
from sqlalchemy import text

from service.db.engine import Database
from tests.conftest import admin


@pytest.fixture
async def database(_postgres_url: str) -> AsyncIterator[Database]:
    opened = Database(_postgres_url, pool_size=2)  # one read connection
    yield opened
    await opened.dispose()


async def test_a_statement_cut_off_by_its_time_limit_does_not_reach_the_next_caller(
    database: Database,
) -> None:
    with pytest.raises(TimeoutError):
        async with database.bounded_read(50) as reader:
            await reader.rows(text("SELECT pg_sleep(5)"))
    answer = await asyncio.wait_for(database.driver_rows("SELECT 41 + 1"), 2)
    assert [tuple(row) for row in answer] == [(42,)]
    assert database._reads.opened == 1


async def test_a_caller_cancelled_once_handed_a_connection_passes_it_on(
    database: Database,
) -> None:
    async with database.one_connection():
        await database.driver_rows("SELECT 1")
        # Another request's task, outside this block's pinned connection.
        waiting = asyncio.create_task(database.driver_rows("SELECT 2"), context=Context())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the only read connection is taken
    # The connection was handed to the waiting caller as the block ended; it is cancelled
    # before it could run, and must not take the connection with it.
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    answer = await asyncio.wait_for(database.driver_rows("SELECT 3"), 2)
    assert [tuple(row) for row in answer] == [(3,)]
    assert database._reads.opened == 1


async def test_a_connection_the_server_ended_is_replaced(database: Database) -> None:
    (first,) = await database.driver_rows("SELECT pg_backend_pid()")
    await admin(f"SELECT pg_terminate_backend({first[0]})")
    await asyncio.sleep(0.3)  # the driver hears of it
    (second,) = await database.driver_rows("SELECT pg_backend_pid()")
    assert second[0] != first[0]
    assert database._reads.opened == 1


async def test_many_callers_share_the_bounded_connections(database: Database) -> None:
    answers = await asyncio.gather(*(database.driver_rows(f"SELECT {n}") for n in range(40)))
    assert [tuple(a[0]) for a in answers] == [(n,) for n in range(40)]
    assert database._reads.opened == 1
