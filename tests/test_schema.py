"""The migrations build exactly the schema the code describes (``service.db.tables``)."""

from __future__ import annotations

import warnings
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Connection, Index, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.schema import CreateIndex

from service.db.tables import metadata

# SQLAlchemy cannot read an index on expressions back from SQLite: those are compared below.
_UNREFLECTED = ".*expression-based index"


def _on_expressions(index: Index) -> bool:
    return not all(isinstance(e, Column) for e in index.expressions)


def _expression_indexes() -> list[Index]:
    return [i for t in metadata.sorted_tables for i in t.indexes if _on_expressions(i)]


async def _run(database_url: str, check: Any) -> Any:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(check)
    finally:
        await engine.dispose()


async def test_migrated_database_matches_the_tables_the_code_uses(database_url: str) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _UNREFLECTED)
            found = compare_metadata(context, metadata)
        sqlite = connection.dialect.name == "sqlite"
        return [
            d
            for d in found
            if not (
                isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == "alembic_version"
            )
            and not (sqlite and d[0] == "add_index" and _on_expressions(d[1]))
        ]

    assert await _run(database_url, differences) == []


async def test_indexes_on_expressions_are_the_ones_the_code_declares(database_url: str) -> None:
    """Each index on a long column's head is built as declared (SQLite keeps its SQL)."""
    declared = _expression_indexes()
    assert {i.name for i in declared} == {
        "ix_idx_token_value",
        "ix_idx_token_text_value",
        "ix_idx_string_value",
        "ix_idx_composite_value",
    }

    def held(connection: Connection) -> dict[str, str]:
        if connection.dialect.name == "sqlite":
            query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        else:
            query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        return {
            name: _plain(sql.replace("ON public.", "ON ").replace(" USING btree", ""))
            for name, sql in connection.execute(text(query))
        }

    def wanted(connection: Connection) -> dict[str, str]:
        return {
            str(i.name): _plain(str(CreateIndex(i).compile(dialect=connection.dialect)))
            for i in declared
        }

    built, code = await _run(database_url, held), await _run(database_url, wanted)
    assert {name: built.get(name) for name in code} == code


def _plain(sql: str) -> str:
    return " ".join(sql.split())


async def test_no_btree_index_holds_long_text_whole(database_url: str) -> None:
    """PostgreSQL refuses an index row over about 2,700 bytes: a text column of unbounded
    length is indexed by its head in a btree, or whole by a hash index."""

    def whole_text_keys(connection: Connection) -> list[tuple[str, str, str]]:
        if connection.dialect.name == "sqlite":
            return []
        query = """
            SELECT c.relname, a.attname, m.amname
            FROM pg_index x
            JOIN pg_class c ON c.oid = x.indexrelid
            JOIN pg_am m ON m.oid = c.relam
            JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey)
            WHERE c.relnamespace = 'public'::regnamespace
              AND a.atttypid = 'text'::regtype AND m.amname <> 'hash'
        """
        return [tuple(row) for row in connection.execute(text(query))]

    assert await _run(database_url, whole_text_keys) == []
