"""Running a parsed search against the store: one keyset page of matches, and the total.

Pages are ordered by the ``_sort`` keys and then the resource row key, and a page boundary is
the tuple of those values for the last (or first) row, carried in the cursor. No OFFSET: a
page continues exactly after the row the previous page ended on, so pages stay correct while
other resources are created or updated between fetches. Each sort key is the lowest value a
resource has for the parameter (highest when descending), as R4 says; resources without a
value sort last either way: https://hl7.org/fhir/R4/search.html#sort
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
)

from service.db.engine import Reader
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
class Key:
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


def _keys(resource_type: str, sort: Sequence[SortKey], postgres: bool) -> list[Key]:
    keys: list[Key] = []
    for key in sort:
        value, blank = _value(resource_type, key, postgres)
        keys.append(Key(case((value.is_(None), 1), else_=0), False))
        keys.append(Key(func.coalesce(value, literal(blank)), key.descending))
    keys.append(Key(resource.c.pk, False))
    return keys


def _beyond(keys: list[Key], forward: bool) -> ColumnElement[bool]:
    """Rows strictly after (``forward``) or before the position in parameters ``k0``..."""
    options = []
    position: list[BindParameter[Any]] = [bindparam(f"k{i}") for i in range(len(keys))]
    for i, key in enumerate(keys):
        increasing = (not key.descending) == forward
        step = key.expr > position[i] if increasing else key.expr < position[i]
        equal = [keys[j].expr == position[j] for j in range(i)]
        options.append(and_(*equal, step))
    return or_(*options)


@lru_cache(maxsize=256)
def page_query(
    resource_type: str,
    condition: ColumnElement[bool],
    sort: tuple[SortKey, ...],
    postgres: bool,
    paged: bool,
    forward: bool,
) -> tuple[Select[Any], tuple[Key, ...]]:
    """A page's statement (its limit and position are parameters) and its keys: built once
    per search plan, sort and direction."""
    keys = _keys(resource_type, sort, postgres)
    columns = [k.expr.label(f"k{i}") for i, k in enumerate(keys)]
    query = select(resource.c.pk, resource.c.id, resource.c.content, *columns).where(condition)
    if paged:
        query = query.where(_beyond(keys, forward))
    return query.order_by(*ordered(keys, forward)).limit(bindparam("limit")), tuple(keys)


def ordered(keys: Sequence[Key], forward: bool, *, columns: Any = None) -> list[Any]:
    """ORDER BY for a page: the keys, or (``columns``) the k0... columns a page's rows carry."""
    exprs = [k.expr if columns is None else columns[f"k{i}"] for i, k in enumerate(keys)]
    return [
        e.desc() if k.descending == forward else e.asc() for e, k in zip(exprs, keys, strict=True)
    ]


async def page(
    reader: Reader,
    resource_type: str,
    condition: ColumnElement[bool],
    params: Mapping[str, Any],
    sort: tuple[SortKey, ...],
    *,
    count: int,
    position: Sequence[Any] | None = None,
    forward: bool = True,
) -> Page:
    """One page of the resources meeting ``condition`` (whose values are in ``params``)."""
    query, keys = page_query(
        resource_type, condition, sort, reader.postgres, position is not None, forward
    )
    arguments = page_arguments(params, count, keys, position)
    if arguments is None:
        return Page([], [], [], False)
    return page_of(list(await reader.rows(query, arguments)), count, forward)


def page_arguments(
    params: Mapping[str, Any], count: int, keys: Sequence[Key], position: Sequence[Any] | None
) -> dict[str, Any] | None:
    """A page statement's arguments; None for a position of another search's shape."""
    arguments = {**params, "limit": count + 1}
    if position is not None:
        if len(position) != len(keys):
            return None
        arguments.update((f"k{i}", v) for i, v in enumerate(position))
    return arguments


def page_of(result: list[Sequence[Any]], count: int, forward: bool) -> Page:
    """The page from a page statement's rows (pk, id, content, k0...), one more than
    ``count`` when more lie beyond, in the statement's order."""
    more = len(result) > count
    result = result[:count]
    if not forward:
        result.reverse()
    rows = [(r[0], r[1], bytes(r[2])) for r in result]
    positions = [list(r[3:]) for r in result]
    return Page(rows, positions[0] if positions else [], positions[-1] if positions else [], more)


@lru_cache(maxsize=256)
def _total_query(condition: ColumnElement[bool]) -> Select[Any]:
    return select(func.count()).select_from(resource).where(condition)


async def total(reader: Reader, condition: ColumnElement[bool], params: Mapping[str, Any]) -> int:
    rows = await reader.rows(_total_query(condition), params)
    return int(rows[0][0] or 0)
