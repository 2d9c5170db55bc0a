"""Versioned storage of resources: every version kept, the current one indexed.

The repository knows rows, versions and index tables; it knows nothing of HTTP. A write stores
the canonical JSON bytes once (current row and version row) and replaces the resource's index
rows in the same transaction, so search never sees a half-written resource.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.tables import INDEX_TABLES, resource, resource_version
from service.errors import BadRequest
from service.search.dates import instant


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

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def reference(self) -> str:
        return f"{self.type}/{self.id}"


_ETAG = re.compile(r'^(?:W/)?"?(\d+)"?$')


def parse_etag(value: str) -> int:
    """The version number an ``If-Match`` value (``W/"3"``) names; 400 when it names none."""
    match = _ETAG.match(value.strip())
    if match is None:
        raise BadRequest(f"If-Match '{value}' is not a version ETag such as W/\"3\"")
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


async def current(
    connection: AsyncConnection, resource_type: str, resource_id: str, *, lock: bool = False
) -> tuple[int, Stored] | None:
    """The current version (deleted or not) and its row key; ``lock`` holds it to commit."""
    query = _CURRENT_BY_KEY_LOCKED if lock else _CURRENT_BY_KEY
    result = await connection.execute(
        query, {"resource_type": resource_type, "resource_id": resource_id}
    )
    row = result.first()
    return None if row is None else (row.pk, _stored(row))


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


async def existing(
    connection: AsyncConnection, references: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of the (type, id) pairs name a live (not deleted) resource."""
    wanted = sorted(set(references))
    if not wanted:
        return set()
    found: set[tuple[str, str]] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await connection.execute(
            select(resource.c.type, resource.c.id).where(
                tuple_(resource.c.type, resource.c.id).in_(chunk), resource.c.deleted.is_(False)
            )
        )
        found.update((r.type, r.id) for r in rows)
    return found


def with_meta(body: dict[str, Any], resource_id: str, number: int, moment: int) -> bytes:
    """The canonical bytes of a version: the client's JSON with server-owned id and meta."""
    meta = dict(body.get("meta") or {})
    meta["versionId"] = str(number)
    meta["lastUpdated"] = instant(moment)
    return orjson.dumps({**body, "id": resource_id, "meta": meta})


async def save(
    connection: AsyncConnection,
    resource_type: str,
    resource_id: str,
    *,
    previous: tuple[int, Stored] | None,
    content: bytes,
    number: int,
    moment: int,
    method: str,
    index_rows: dict[str, list[dict[str, Any]]],
    deleted: bool = False,
) -> Stored:
    """Write one new version (or a deletion) and replace the resource's index rows."""
    values = {"version": number, "last_updated": moment, "deleted": deleted, "content": content}
    if previous is None:
        pk = (
            await connection.execute(
                insert(resource)
                .values(type=resource_type, id=resource_id, **values)
                .returning(resource.c.pk)
            )
        ).scalar_one()
    else:
        pk = previous[0]
        await connection.execute(update(resource).where(resource.c.pk == pk).values(**values))
        for table in INDEX_TABLES.values():
            await connection.execute(delete(table).where(table.c.resource_pk == pk))
    await connection.execute(
        insert(resource_version).values(
            resource_pk=pk, type=resource_type, id=resource_id, method=method, **values
        )
    )
    for kind, rows in index_rows.items():
        if rows:
            await connection.execute(
                insert(INDEX_TABLES[kind]),
                [{"resource_pk": pk, "resource_type": resource_type, **r} for r in rows],
            )
    return Stored(resource_type, resource_id, number, moment, deleted, content, method)


@dataclass(frozen=True)
class NewResource:
    """A first version written by the server itself (an AuditEvent), for ``insert_new``."""

    type: str
    id: str
    content: bytes
    moment: int
    index_rows: dict[str, list[dict[str, Any]]]


async def insert_new(connection: AsyncConnection, resources: list[NewResource]) -> None:
    """Write many first versions at once: one statement per table, not one per resource.

    The resource rows go in as multi-row ``INSERT ... RETURNING`` (their keys, in order);
    version and index rows as one driver-level executemany each. (One literal multi-row
    ``VALUES`` per table was measured slower: each batch size compiles a new statement.)

    The batched audit writer calls this; a request path writing one resource uses ``save``.
    """
    if not resources:
        return
    pks = (
        await connection.execute(
            insert(resource).returning(resource.c.pk, sort_by_parameter_order=True),
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
        )
    ).scalars()
    keyed = list(zip(pks, resources, strict=True))
    await connection.execute(
        insert(resource_version),
        [
            {
                "resource_pk": pk,
                "type": r.type,
                "id": r.id,
                "method": "POST",
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
        if rows:
            await connection.execute(insert(table), rows)


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
