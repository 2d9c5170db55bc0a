"""``written``: statements inside a write transaction, which on PostgreSQL go to the driver
directly once the transaction has begun. Callers (a create racing another, a transaction
retried on deadlock) catch SQLAlchemy's errors, so the driver's must arrive as those."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from service.db.engine import Database, written
from service.db.tables import server_secret

_INSERT = text("INSERT INTO server_secret (name, value) VALUES (:name, :value) RETURNING name")


async def test_rows_come_back_by_position_before_and_after_the_transaction_begins(
    database_url: str,
) -> None:
    database = Database(database_url)
    try:
        async with database.write() as connection:
            first = await written(connection, _INSERT, {"name": "w-1", "value": b"a"})
            second = await written(connection, _INSERT, {"name": "w-2", "value": b"b"})
            assert [tuple(r) for r in first] == [("w-1",)]
            assert [tuple(r) for r in second] == [("w-2",)]
        async with database.read() as connection:
            names = (await connection.execute(server_secret.select())).all()
        assert {"w-1", "w-2"} <= {row.name for row in names}
    finally:
        async with database.write() as connection:
            await connection.execute(server_secret.delete().where(server_secret.c.name.like("w-%")))
        await database.dispose()


async def test_a_unique_violation_is_an_integrity_error_and_nothing_is_kept(
    database_url: str,
) -> None:
    database = Database(database_url)
    try:
        with pytest.raises(IntegrityError):
            async with database.write() as connection:
                await written(connection, _INSERT, {"name": "dup-1", "value": b"a"})
                await written(connection, _INSERT, {"name": "dup-1", "value": b"b"})
        async with database.read() as connection:
            kept = (
                await connection.execute(
                    server_secret.select().where(server_secret.c.name == "dup-1")
                )
            ).all()
        assert kept == []  # the whole transaction rolled back
    finally:
        await database.dispose()


async def test_other_database_errors_are_database_errors_with_their_sqlstate(
    backend: str, database_url: str
) -> None:
    database = Database(database_url)
    try:
        with pytest.raises(DBAPIError) as raised:
            async with database.write() as connection:
                await written(connection, _INSERT, {"name": "missing-1", "value": b"a"})
                await written(
                    connection, text("SELECT * FROM no_such_table WHERE 1 = :one"), {"one": 1}
                )
        assert not isinstance(raised.value, IntegrityError)
        if backend == "postgresql":  # SQLite's errors carry no SQLSTATE
            assert getattr(raised.value.orig, "sqlstate", None) == "42P01"  # undefined_table
    finally:
        await database.dispose()
