"""Running a parsed search against the store: one keyset page of matches, and the total.

Pages are ordered by the ``_sort`` keys and then the resource row key, and a page boundary is
the tuple of those values for the last (or first) row, carried in the cursor. No OFFSET: a
page continues exactly after the row the previous page ended on, so pages stay correct while
other resources are created or updated between fetches. Each sort key is the lowest value a
resource has for the parameter (highest when descending), as R4 says; resources without a
value sort last either way: https://hl7.org/fhir/R4/search.html#sort
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.tables import idx_date, idx_string, idx_token, resource
from service.search.controls import SortKey
from service.search.parameters import parameter


@dataclass(frozen=True)
class Page:
    rows: list[tuple[int, str, bytes]]  # (pk, id, content)
    first: list[Any]  # keyset position of the first row
    last: list[Any]  # keyset position of the last row
    more: bool


@dataclass(frozen=True)
class _Key:
    expr: ColumnElement[Any]
    descending: bool


def _value(
    resource_type: str, key: SortKey, postgres: bool
) -> tuple[ColumnElement[Any], int | str]:
    """The sort value of the current ``resource`` row for ``key``, and its 'missing' stand-in."""
    if key.name == "_lastUpdated":
        return resource.c.last_updated, 0
    param = parameter(resource_type, key.name)
    assert param is not None  # controls only accept sortable parameters of this type
    aggregate = func.max if key.descending else func.min
    column: ColumnElement[Any]
    blank: int | str
    if param.type == "date":
        table, column, blank = (
            idx_date,
            idx_date.c.high if key.descending else idx_date.c.low,
            0,
        )
    elif param.type == "string":
        table, column, blank = idx_string, idx_string.c.norm, ""
    else:
        table, column, blank = idx_token, idx_token.c.code, ""
    if postgres and isinstance(blank, str):
        column = column.collate("C")  # byte order, as SQLite compares: one order everywhere
    value = (
        select(aggregate(column))
        .where(
            table.c.resource_pk == resource.c.pk,
            table.c.resource_type == resource_type,
            table.c.param == param.name,
        )
        .scalar_subquery()
    )
    return value, blank


def _keys(resource_type: str, sort: Sequence[SortKey], postgres: bool) -> list[_Key]:
    keys: list[_Key] = []
    for key in sort:
        value, blank = _value(resource_type, key, postgres)
        keys.append(_Key(case((value.is_(None), 1), else_=0), False))
        keys.append(_Key(func.coalesce(value, literal(blank)), key.descending))
    keys.append(_Key(resource.c.pk, False))
    return keys


def _beyond(keys: list[_Key], position: Sequence[Any], forward: bool) -> ColumnElement[bool]:
    """Rows strictly after (``forward``) or before ``position`` in the keys' order."""
    options = []
    for i, key in enumerate(keys):
        increasing = (not key.descending) == forward
        step = key.expr > position[i] if increasing else key.expr < position[i]
        equal = [keys[j].expr == position[j] for j in range(i)]
        options.append(and_(*equal, step))
    return or_(*options)


async def page(
    connection: AsyncConnection,
    resource_type: str,
    condition: ColumnElement[bool],
    sort: Sequence[SortKey],
    *,
    count: int,
    position: Sequence[Any] | None = None,
    forward: bool = True,
) -> Page:
    keys = _keys(resource_type, sort, connection.dialect.name == "postgresql")
    columns = [k.expr.label(f"k{i}") for i, k in enumerate(keys)]
    query = select(resource.c.pk, resource.c.id, resource.c.content, *columns).where(condition)
    if position is not None:
        if len(position) != len(keys):
            return Page([], [], [], False)
        query = query.where(_beyond(keys, position, forward))
    order = [k.expr.desc() if k.descending == forward else k.expr.asc() for k in keys]
    result = list((await connection.execute(query.order_by(*order).limit(count + 1))).all())
    more = len(result) > count
    result = result[:count]
    if not forward:
        result.reverse()
    rows = [(r.pk, r.id, bytes(r.content)) for r in result]
    positions = [[r[f"k{i}"] for i in range(len(keys))] for r in (x._mapping for x in result)]
    return Page(rows, positions[0] if positions else [], positions[-1] if positions else [], more)


def timed_out(error: DBAPIError) -> bool:
    """Whether ``error`` is PostgreSQL cancelling a statement at its time limit."""
    return "statement timeout" in str(error.orig)


async def total(connection: AsyncConnection, condition: ColumnElement[bool]) -> int:
    query = select(func.count()).select_from(resource).where(condition)
    return int(await connection.scalar(query) or 0)
