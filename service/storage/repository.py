"""Versioned storage of resources: every version kept, the current one indexed.

The repository knows rows, versions and index tables; it knows nothing of HTTP. A write stores
the canonical JSON bytes once (current row and version row) and replaces the resource's index
rows in the same transaction, so search never sees a half-written resource.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import orjson
from sqlalchemy import (
    Table,
    TextClause,
    and_,
    bindparam,
    delete,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.engine import Database, as_sqlalchemy_errors, compiled, written
from service.db.tables import INDEX_TABLES, resource, resource_version
from service.errors import BadRequest
from service.search.dates import instant
from service.storage import combined_writes
from service.storage.combined_writes import TableRows, array_type


@dataclass(frozen=True)
class Stored:
    """One stored version of a resource, with its JSON bytes exactly as they are served."""

    type: str
    id: str
    version: int
    last_updated: int
    deleted: bool
    content: bytes
    method: str = "PUT"

    @cached_property
    def body(self) -> dict[str, Any]:
        """The JSON parsed, once for all who look at this version inside one write (the
        no-change check, the index rows replaced, the access guard, the keyworking hook).

        Shared, so read-only: a reader that changes it must copy it first.
        """
        parsed: dict[str, Any] = orjson.loads(self.content)
        return parsed

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def reference(self) -> str:
        return f"{self.type}/{self.id}"


# Exactly the ETags this server hands out (``Stored.etag``), with a version a database
# integer holds.
_ETAG = re.compile(r'W/"([0-9]{1,9})"')


def parse_etag(value: str) -> int:
    """The version number an ``If-Match`` value (``W/"3"``) names; 400 when it names none.

    Only the weak ETag this server sends is a version: a strong ``"3"``, a bare ``W/3`` or
    ``3`` is refused rather than guessed at, since a guard the client got wrong must not let
    the update through unguarded."""
    match = _ETAG.fullmatch(value.strip())
    if match is None:
        raise BadRequest(
            f"If-Match '{value[:40]}' is not a version ETag such as W/\"3\"",
            expression=("If-Match",),
        )
    return int(match.group(1))


_CURRENT = (
    resource.c.pk,
    resource.c.type,
    resource.c.id,
    resource.c.version,
    resource.c.last_updated,
    resource.c.deleted,
    resource.c.content,
)


def _stored(row: Any) -> Stored:
    return Stored(
        row.type,
        row.id,
        row.version,
        row.last_updated,
        row.deleted,
        bytes(row.content),
        getattr(row, "method", "PUT"),
    )


# Built once, so a read by id (the busiest query) does not build a statement and compute
# its cache key on every call.
_CURRENT_BY_KEY = select(*_CURRENT).where(
    resource.c.type == bindparam("resource_type"), resource.c.id == bindparam("resource_id")
)
_CURRENT_BY_KEY_LOCKED = _CURRENT_BY_KEY.with_for_update()


def _current_of(row: Sequence[Any]) -> tuple[int, Stored]:
    """(row key, Stored) from a row of ``_CURRENT``'s columns, in their order."""
    return row[0], Stored(row[1], row[2], row[3], row[4], row[5], bytes(row[6]))


async def current_now(
    database: Database, resource_type: str, resource_id: str
) -> tuple[int, Stored] | None:
    """``current`` for a read outside any transaction, at the least cost the driver allows."""
    row = await database.first_row(
        _CURRENT_BY_KEY, {"resource_type": resource_type, "resource_id": resource_id}
    )
    return None if row is None else _current_of(row)


async def current(
    connection: AsyncConnection, resource_type: str, resource_id: str, *, lock: bool = False
) -> tuple[int, Stored] | None:
    """The current version (deleted or not) and its row key; ``lock`` holds it to commit."""
    query = _CURRENT_BY_KEY_LOCKED if lock else _CURRENT_BY_KEY
    result = await connection.execute(
        query, {"resource_type": resource_type, "resource_id": resource_id}
    )
    row = result.first()
    return None if row is None else _current_of(row)


# One statement takes many transaction-scoped advisory locks, in the order given.
_LOCK_ALL = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS BIGINT[])) AS k")


def lock_key(name: bytes) -> int:
    """The PostgreSQL advisory lock key (a signed 64-bit integer) for a name."""
    return int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)


async def advisory_locks(connection: AsyncConnection, keys: Iterable[int]) -> None:
    """Hold these PostgreSQL advisory locks until the transaction ends (one statement).

    Taken in key order, so two transactions wanting some of the same keys cannot deadlock.
    """
    await connection.execute(_LOCK_ALL, {"keys": sorted(set(keys))})


async def current_by_keys(connection: AsyncConnection, pks: list[int]) -> dict[int, Stored]:
    """The current versions of the rows with these keys, locked (in key order) to commit."""
    if not pks:
        return {}
    rows = await connection.execute(
        select(*_CURRENT).where(resource.c.pk.in_(pks)).order_by(resource.c.pk).with_for_update()
    )
    return {row.pk: _stored(row) for row in rows}


async def version(
    connection: AsyncConnection, resource_type: str, resource_id: str, number: int
) -> Stored | None:
    row = (
        await connection.execute(
            select(resource_version).where(
                resource_version.c.type == resource_type,
                resource_version.c.id == resource_id,
                resource_version.c.version == number,
            )
        )
    ).first()
    return None if row is None else _stored(row)


# Which (type, id) pairs exist, on PostgreSQL: the pairs travel as two arrays, so one
# prepared statement serves any number of them. A tuple IN renders two placeholders per pair,
# and expanding and compiling those again for every write was a tenth of an update's CPU.
_EXISTING_SQL = (
    "SELECT r.type, r.id FROM resource AS r"
    " JOIN unnest(CAST(:types AS TEXT[]), CAST(:ids AS TEXT[])) AS w(type, id)"
    " ON r.type = w.type AND r.id = w.id"
)
_EXISTING = {True: text(_EXISTING_SQL), False: text(_EXISTING_SQL + " WHERE NOT r.deleted")}


async def existing(
    connection: AsyncConnection,
    references: Iterable[tuple[str, str]],
    *,
    with_deleted: bool = False,
) -> set[tuple[str, str]]:
    """Which of the (type, id) pairs name a live resource (or any row, ``with_deleted``)."""
    wanted = sorted(set(references))
    if not wanted:
        return set()
    if connection.dialect.name == "postgresql":
        return {
            (r[0], r[1]) for r in await written(connection, _EXISTING[with_deleted], _pairs(wanted))
        }
    found: set[tuple[str, str]] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = select(resource.c.type, resource.c.id).where(
            tuple_(resource.c.type, resource.c.id).in_(chunk)
        )
        if not with_deleted:
            query = query.where(resource.c.deleted.is_(False))
        found.update((r.type, r.id) for r in await connection.execute(query))
    return found


async def existing_now(
    database: Database, references: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """PostgreSQL: ``existing`` (live resources only) as one statement on its own."""
    wanted = sorted(set(references))
    if not wanted:
        return set()
    sql, arguments = compiled(_EXISTING[False], database.engine.dialect)
    return {(r[0], r[1]) for r in await database.driver_rows(sql, *arguments(_pairs(wanted)))}


def _pairs(wanted: list[tuple[str, str]]) -> dict[str, list[str]]:
    return {"types": [t for t, _ in wanted], "ids": [i for _, i in wanted]}


def with_meta(body: dict[str, Any], resource_id: str, number: int, moment: int) -> bytes:
    """The canonical bytes of a version: the client's JSON with server-owned id and meta."""
    meta = dict(body.get("meta") or {})
    meta["versionId"] = str(number)
    meta["lastUpdated"] = instant(moment)
    return orjson.dumps({**body, "id": resource_id, "meta": meta})


class VersionMoved(Exception):
    """An update written without a lock found its row at another version than it read."""


@dataclass(frozen=True)
class NextVersion:
    """One new version (or a deletion) of a resource, and the resources stored with it.

    ``replaced_rows`` are the index rows the previous version has, when the caller knows
    them (None: unknown). Then only the kinds of rows that differ are replaced: an update
    that changes no searchable value (a team's name, say) writes no index rows at all,
    where it used to delete and insert every kind, a dozen statements. ``companions`` are
    first versions of other resources (a Provenance), and ``rows`` rows of other tables (a
    projection), stored with it or not at all.
    """

    type: str
    id: str
    previous: tuple[int, Stored] | None
    content: bytes
    number: int
    moment: int
    method: str
    index_rows: Mapping[str, list[dict[str, Any]]]
    replaced_rows: Mapping[str, list[dict[str, Any]]] | None = None
    deleted: bool = False
    companions: Sequence[NewResource] = ()
    rows: Sequence[TableRows] = ()

    @property
    def stored(self) -> Stored:
        return Stored(
            self.type, self.id, self.number, self.moment, self.deleted, self.content, self.method
        )

    @property
    def stale(self) -> list[str]:
        """The kinds of index rows to write."""
        replaced, rows = self.replaced_rows, self.index_rows
        return [
            k for k in INDEX_TABLES if replaced is None or replaced.get(k, []) != rows.get(k, [])
        ]

    def dropped(self, stale: list[str]) -> list[str]:
        """The kinds of rows to delete: the stale kinds the resource has rows of now."""
        replaced = self.replaced_rows
        return [k for k in stale if self.previous and (replaced is None or replaced.get(k))]

    def combined(self) -> tuple[TextClause, dict[str, Any]]:
        """PostgreSQL: the write as one statement (``combined_writes``)."""
        version = combined_writes.Version(self.type, self.id, self.method, self.index_rows)
        companions = [c.first for c in self.companions]
        if self.previous is None:
            assert self.number == 1 and not self.deleted  # a resource's first row is version 1
            first = combined_writes.First(version, self.moment, self.content)
            return combined_writes.first_versions([first, *companions], self.rows)
        stale = self.stale
        return combined_writes.next_version(
            self.previous[0],
            version,
            replacing=self.previous[1].version,
            number=self.number,
            moment=self.moment,
            deleted=self.deleted,
            content=self.content,
            stale=stale,
            dropped=self.dropped(stale),
            companions=companions,
            extra=self.rows,
        )


async def save(connection: AsyncConnection, write: NextVersion) -> Stored:
    """Store the version inside the caller's transaction, its previous version locked."""
    if connection.dialect.name == "postgresql":
        _wrote(await written(connection, *write.combined()))
        return write.stored
    values = {
        "version": write.number,
        "last_updated": write.moment,
        "deleted": write.deleted,
        "content": write.content,
    }
    stale = write.stale
    if write.previous is None:
        pk = (
            await connection.execute(
                insert(resource)
                .values(type=write.type, id=write.id, **values)
                .returning(resource.c.pk)
            )
        ).scalar_one()
    else:
        pk = write.previous[0]
        await connection.execute(update(resource).where(resource.c.pk == pk).values(**values))
        for kind in write.dropped(stale):
            table = INDEX_TABLES[kind]
            await connection.execute(delete(table).where(table.c.resource_pk == pk))
    await connection.execute(
        insert(resource_version).values(
            resource_pk=pk, type=write.type, id=write.id, method=write.method, **values
        )
    )
    for kind, rows in write.index_rows.items():
        if rows and kind in stale:
            await connection.execute(
                insert(INDEX_TABLES[kind]),
                [{"resource_pk": pk, "resource_type": write.type, **r} for r in rows],
            )
    await insert_new(connection, list(write.companions), write.rows)
    return write.stored


async def save_alone(database: Database, write: NextVersion) -> Stored:
    """PostgreSQL: store an update as one statement with no transaction around it (it
    commits by itself), written only if the row is still at the version ``write`` replaces;
    ``VersionMoved`` when it is not, and nothing was written."""
    statement, params = write.combined()
    sql, arguments = compiled(statement, database.engine.dialect)
    with as_sqlalchemy_errors(statement):
        _wrote(await database.driver_rows(sql, *arguments(params)))
    return write.stored


def _wrote(rows: Sequence[Sequence[Any]]) -> None:
    if rows[0][0] == 0:
        raise VersionMoved


@dataclass(frozen=True)
class NewResource:
    """A first version of a resource not stored before, for ``insert_new``.

    ``method`` is the interaction history shows for it: POST for a create (and for what the
    server writes itself: AuditEvent, Provenance), PUT for an update that created.
    """

    type: str
    id: str
    content: bytes
    moment: int
    index_rows: dict[str, list[dict[str, Any]]]
    method: str = "POST"

    @property
    def stored(self) -> Stored:
        return Stored(self.type, self.id, 1, self.moment, False, self.content, self.method)

    @property
    def first(self) -> combined_writes.First:
        version = combined_writes.Version(self.type, self.id, self.method, self.index_rows)
        return combined_writes.First(version, self.moment, self.content)


async def insert_new(
    connection: AsyncConnection, resources: list[NewResource], extra: Sequence[TableRows] = ()
) -> None:
    """Write many first versions at once, and ``extra`` rows of other tables with them: on
    PostgreSQL one statement in all (``combined_writes``), on SQLite one statement per
    table; never one per resource.

    The batched audit writer, Provenance and the creates of a transaction Bundle call this;
    a request path writing one version of a resource uses ``save``. A resource that exists
    already raises ``IntegrityError`` (the unique (type, id) key).
    """
    if resources and connection.dialect.name == "postgresql":
        firsts = [r.first for r in resources]
        await written(connection, *combined_writes.first_versions(firsts, extra))
        return
    for batch in extra:
        await insert_rows(connection, batch.table, batch.rows)
    if not resources:
        return
    inserted = await insert_rows(
        connection,
        resource,
        [
            {
                "type": r.type,
                "id": r.id,
                "version": 1,
                "last_updated": r.moment,
                "deleted": False,
                "content": r.content,
            }
            for r in resources
        ],
        returning=("pk", "type", "id"),
    )
    pk_of = {(row[1], row[2]): row[0] for row in inserted}
    keyed = [(pk_of[(r.type, r.id)], r) for r in resources]
    await insert_rows(
        connection,
        resource_version,
        [
            {
                "resource_pk": pk,
                "type": r.type,
                "id": r.id,
                "method": r.method,
                "version": 1,
                "last_updated": r.moment,
                "deleted": False,
                "content": r.content,
            }
            for pk, r in keyed
        ],
    )
    for kind, table in INDEX_TABLES.items():
        rows = [
            {"resource_pk": pk, "resource_type": r.type, **row}
            for pk, r in keyed
            for row in r.index_rows.get(kind, ())
        ]
        await insert_rows(connection, table, rows)


_COPY_FROM_ROWS = 100


async def insert_rows(
    connection: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: tuple[str, ...] = (),
) -> list[Sequence[Any]]:
    """Insert many rows (all with the same keys) at once; the ``returning`` columns of the
    inserted rows, by position, in no particular order.

    On PostgreSQL many rows that need nothing back go in by binary ``COPY``, and the rest as
    one array per column through ``INSERT ... SELECT FROM unnest(...) [RETURNING]`` (a COPY
    is two round trips, so a few rows, as one write's keyworking projection, go faster as
    one statement; at 3,000 rows COPY took 20-30% less time, /tmp micro-benchmark): an
    executemany is one execution per row, and on ingest (thousands of index rows per
    bundle) those executions were much of the database's work and of the driver's; COPY
    was measured at a fifth of executemany's client CPU and database time. (One literal
    multi-row ``VALUES`` was slower still: each batch size compiles a new statement.)
    SQLite takes an executemany.
    """
    if not rows:
        return []
    names = tuple(rows[0])
    if connection.dialect.name != "postgresql":
        statement = insert(table)
        if returning:
            statement = statement.returning(*(table.c[n] for n in returning))
        result = await connection.execute(statement, list(rows))
        return list(result) if returning else []
    if not returning and len(rows) >= _COPY_FROM_ROWS:
        driver = (await connection.get_raw_connection()).driver_connection
        # COPY goes to the driver directly: only once the transaction has begun there.
        if driver is not None and driver.is_in_transaction():
            await _copy(driver, table, names, rows)
            return []
    columns = {n: [r[n] for r in rows] for n in names}
    return list(await written(connection, _unnest_insert(table, names, returning), columns))


async def _copy(
    driver: Any, table: Table, names: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Binary COPY on the asyncpg connection; its errors raised as SQLAlchemy's would be."""
    records = [tuple(row[n] for n in names) for row in rows]
    with as_sqlalchemy_errors(f"COPY {table.name}"):
        await driver.copy_records_to_table(table.name, columns=list(names), records=records)


@cache
def _unnest_insert(table: Table, names: tuple[str, ...], returning: tuple[str, ...]) -> TextClause:
    casts = ", ".join(f"CAST(:{name} AS {array_type(table, name)})" for name in names)
    columns = ", ".join(f'"{name}"' for name in names)
    sql = f'INSERT INTO "{table.name}" ({columns}) SELECT * FROM unnest({casts})'
    if returning:
        sql += " RETURNING " + ", ".join(f'"{name}"' for name in returning)
    return text(sql)


@dataclass(frozen=True)
class HistoryQuery:
    resource_type: str | None
    resource_id: str | None
    since: int | None
    at: tuple[int, int] | None
    count: int
    after_seq: int | None = None
    before_seq: int | None = None


async def history(
    connection: AsyncConnection, query: HistoryQuery
) -> tuple[list[tuple[int, Stored]], bool]:
    """Versions newest first (keyset on ``seq``), and whether more lie beyond the page."""
    v = resource_version
    conditions: list[Any] = []
    if query.resource_type:
        conditions.append(v.c.type == query.resource_type)
    if query.resource_id:
        conditions.append(v.c.id == query.resource_id)
    if query.since is not None:
        conditions.append(v.c.last_updated >= query.since)
    if query.at is not None:
        low, high = query.at
        later = v.alias("later")
        conditions.append(v.c.last_updated <= high)
        conditions.append(
            ~select(later.c.seq)
            .where(
                later.c.type == v.c.type,
                later.c.id == v.c.id,
                later.c.version > v.c.version,
                later.c.last_updated <= low,
            )
            .exists()
        )
    ascending = query.before_seq is not None
    if query.after_seq is not None:
        conditions.append(v.c.seq < query.after_seq)
    if query.before_seq is not None:
        conditions.append(v.c.seq > query.before_seq)
    order = v.c.seq.asc() if ascending else v.c.seq.desc()
    rows = list(
        await connection.execute(
            select(v).where(and_(True, *conditions)).order_by(order).limit(query.count + 1)
        )
    )
    more = len(rows) > query.count
    page = [(r.seq, _stored(r)) for r in rows[: query.count]]
    if ascending:
        page.reverse()
    return page, more
