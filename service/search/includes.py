"""``_include`` and ``_revinclude``: the resources a page of matches points at, or that point
at it, found through the reference index in both directions (never by parsing resources).

Generic over the registry: any registered type with a reference parameter can be included
or reverse-included (``Provenance:target`` works as soon as Provenance is registered).
``:iterate`` directives are applied once more to what the first round found — one extra hop,
which bounds the work. Each included type must be visible to the caller: ``visible(types)``
is the caller's condition for a ``resource`` row of one of those types (access restrictions
included), or ``None`` when the caller may search none of them.
https://hl7.org/fhir/R4/search.html#include
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, and_, any_, literal, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.tables import idx_reference, resource
from service.search.controls import Include
from service.search.parameters import SEARCH_PARAMETERS, SearchParam
from service.search.sql import one_of

Visible = Callable[[tuple[str, ...]], ColumnElement[bool] | None]


@dataclass(frozen=True)
class Found:
    pk: int
    type: str
    id: str
    content: bytes


def _reference_params(resource_type: str) -> list[SearchParam]:
    return [p for p in SEARCH_PARAMETERS.get(resource_type, ()) if p.type == "reference"]


@lru_cache(maxsize=256)
def _pointing(source: str, names: tuple[str, ...]) -> ColumnElement[bool]:
    """Reference index rows of ``source`` in ``names`` that point at the ``resource`` row;
    built once, as building SQLAlchemy comparisons is much of an include's Python time."""
    return and_(
        idx_reference.c.resource_type == source,
        one_of(idx_reference.c.param, names),
        idx_reference.c.target_type == resource.c.type,
        idx_reference.c.target_id == resource.c.id,
    )


def _among(
    column: ColumnElement[Any], values: Collection[Any], postgres: bool
) -> ColumnElement[bool]:
    """``column`` is one of ``values``. On PostgreSQL one array parameter (``= ANY``), where
    ``IN`` renders a placeholder per value, so each page size made new SQL to compile and
    prepare; SQLite has no arrays."""
    if not postgres:
        return column.in_(list(values))
    return column == any_(literal(list(values), ARRAY(column.type)))


def _forward(
    spec: Include, base: Sequence[Found], visible: Visible, postgres: bool
) -> list[ColumnElement[bool]]:
    """Conditions on ``resource`` for targets of the base resources' references."""
    conditions = []
    for source in sorted({f.type for f in base}):
        if spec.source not in ("*", source):
            continue
        params = [p for p in _reference_params(source) if spec.param in ("*", p.name)]
        targets = {t for p in params for t in p.target_types() if spec.target in (None, t)}
        allowed = visible(tuple(sorted(targets)))
        if not params or allowed is None:
            continue
        link = (
            select(idx_reference.c.resource_pk)
            .where(
                _among(
                    idx_reference.c.resource_pk,
                    [f.pk for f in base if f.type == source],
                    postgres,
                ),
                _pointing(source, tuple(p.name for p in params)),
            )
            .exists()
        )
        conditions.append(and_(allowed, link))
    return conditions


def _reverse(
    spec: Include, base: Sequence[Found], visible: Visible, postgres: bool
) -> list[ColumnElement[bool]]:
    """Conditions on ``resource`` for resources whose references point at the base."""
    conditions = []
    for target in sorted({f.type for f in base}):
        if spec.target not in (None, target):
            continue
        for source in SEARCH_PARAMETERS:
            condition = visible((source,))
            names = [
                p.name
                for p in _reference_params(source)
                if spec.source in ("*", source)
                and spec.param in ("*", p.name)
                and p.refers_to(target)
            ]
            if not names or condition is None:
                continue
            link = (
                select(idx_reference.c.resource_pk)
                .where(
                    idx_reference.c.resource_pk == resource.c.pk,
                    idx_reference.c.resource_type == source,
                    one_of(idx_reference.c.param, names),
                    idx_reference.c.target_type == target,
                    _among(
                        idx_reference.c.target_id,
                        [f.id for f in base if f.type == target],
                        postgres,
                    ),
                )
                .exists()
            )
            conditions.append(and_(condition, link))
    return conditions


async def _round(
    connection: AsyncConnection,
    specs: Sequence[Include],
    base: Sequence[Found],
    visible: Visible,
    seen: set[int],
    limit: int,
) -> list[Found]:
    conditions = []
    postgres = connection.dialect.name == "postgresql"
    for spec in specs:
        build = _reverse if spec.reverse else _forward
        conditions.extend(build(spec, base, visible, postgres))
    if not conditions or limit <= 0:
        return []
    query = (
        select(resource.c.pk, resource.c.type, resource.c.id, resource.c.content)
        .where(or_(*conditions), not_(_among(resource.c.pk, seen, postgres)))
        .order_by(resource.c.pk)
        .limit(limit)
    )
    found = [Found(r.pk, r.type, r.id, bytes(r.content)) for r in await connection.execute(query)]
    seen.update(f.pk for f in found)
    return found


async def included(
    connection: AsyncConnection,
    specs: Sequence[Include],
    matches: Sequence[Found],
    visible: Visible,
    limit: int,
) -> tuple[list[Found], bool]:
    """Included resources (not already among the matches), and whether ``limit`` cut them."""
    seen = {m.pk for m in matches}
    first = await _round(connection, specs, matches, visible, seen, limit + 1)
    iterate = [s for s in specs if s.iterate]
    second = (
        await _round(connection, iterate, first, visible, seen, limit + 1 - len(first))
        if iterate and first
        else []
    )
    everything = first + second
    return everything[:limit], len(everything) > limit
