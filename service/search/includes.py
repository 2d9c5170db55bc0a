"""``_include`` and ``_revinclude``: the resources a page of matches points at, or that point
at it, found through the reference index in both directions (never by parsing resources).

Generic over the registry: any registered type with a reference parameter can be included
or reverse-included (``Provenance:target`` works as soon as Provenance is registered).
``:iterate`` directives are applied once more to what the first round found — one extra hop,
which bounds the work. Each included resource must be visible to the caller: its type one
the caller may search, and within the caller's restrictions for it.
https://hl7.org/fhir/R4/search.html#include
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Select, and_, any_, bindparam, not_, or_, select

from service.db.engine import Reader
from service.db.tables import idx_reference, resource
from service.search.controls import Include
from service.search.parameters import SEARCH_PARAMETERS, SearchParam
from service.search.sql import Match, Planner, one_of, visible

Planners = Callable[[], Planner]  # a fresh planner for one statement, with the caller's scope


@dataclass(frozen=True)
class Found:
    pk: int
    type: str
    id: str
    content: bytes


@dataclass(frozen=True)
class _Link:
    """One way a round reaches resources, planned: the reference index rows of ``source``
    in ``names`` (to ``target``, reverse) from or to the base resources, whose keys (forward)
    or ids (reverse) are parameter ``keys``; what is reached must be ``visible``."""

    reverse: bool
    source: str
    names: tuple[str, ...]
    target: str
    visible: tuple[Match, ...]
    keys: str


def _reference_params(resource_type: str) -> list[SearchParam]:
    return [p for p in SEARCH_PARAMETERS.get(resource_type, ()) if p.type == "reference"]


def _forward(spec: Include, base: Sequence[Found], planner: Planner) -> list[_Link]:
    """Links to the targets of the base resources' references."""
    links = []
    for source in sorted({f.type for f in base}):
        if spec.source not in ("*", source):
            continue
        params = [p for p in _reference_params(source) if spec.param in ("*", p.name)]
        targets = {t for p in params for t in p.target_types() if spec.target in (None, t)}
        allowed = tuple(planner.match(t) for t in sorted(targets))
        if not params or all(m.terms is None for m in allowed):
            continue
        (keys,) = planner.bind([f.pk for f in base if f.type == source])
        links.append(_Link(False, source, tuple(p.name for p in params), "", allowed, keys))
    return links


def _reverse(spec: Include, base: Sequence[Found], planner: Planner) -> list[_Link]:
    """Links to the resources whose references point at the base."""
    links = []
    for target in sorted({f.type for f in base}):
        if spec.target not in (None, target):
            continue
        for source in SEARCH_PARAMETERS:
            names = tuple(
                p.name
                for p in _reference_params(source)
                if spec.source in ("*", source)
                and spec.param in ("*", p.name)
                and p.refers_to(target)
            )
            if not names:
                continue
            allowed = planner.match(source)
            if allowed.terms is None:
                continue
            (keys,) = planner.bind([f.id for f in base if f.type == target])
            links.append(_Link(True, source, names, target, (allowed,), keys))
    return links


def _among(column: ColumnElement[Any], name: str, postgres: bool) -> ColumnElement[bool]:
    """``column`` is one of the values in parameter ``name``. On PostgreSQL one array
    parameter (``= ANY``): ``IN`` renders a placeholder per value, so each page size would
    make new SQL to compile and prepare; SQLite has no arrays."""
    if not postgres:
        return column.in_(bindparam(name, expanding=True))
    return column == any_(bindparam(name, type_=ARRAY(column.type)))


def _reached(link: _Link, postgres: bool) -> ColumnElement[bool]:
    allowed = visible(resource, link.visible)
    assert allowed is not None  # links are only planned to types the caller may see
    names = one_of(idx_reference.c.param, link.names)
    if link.reverse:
        pointing = and_(
            idx_reference.c.resource_pk == resource.c.pk,
            idx_reference.c.resource_type == link.source,
            names,
            idx_reference.c.target_type == link.target,
            _among(idx_reference.c.target_id, link.keys, postgres),
        )
    else:
        pointing = and_(
            _among(idx_reference.c.resource_pk, link.keys, postgres),
            idx_reference.c.resource_type == link.source,
            names,
            idx_reference.c.target_type == resource.c.type,
            idx_reference.c.target_id == resource.c.id,
        )
    return and_(allowed, select(idx_reference.c.resource_pk).where(pointing).exists())


@lru_cache(maxsize=128)
def _round_query(links: tuple[_Link, ...], seen: str, postgres: bool) -> Select[Any]:
    """One round's statement, built once per shape: the keys it starts from, the keys it
    has already found and the limit are parameters."""
    return (
        select(resource.c.pk, resource.c.type, resource.c.id, resource.c.content)
        .where(
            or_(*[_reached(link, postgres) for link in links]),
            not_(_among(resource.c.pk, seen, postgres)),
        )
        .order_by(resource.c.pk)
        .limit(bindparam("limit"))
    )


async def _round(
    reader: Reader,
    specs: Sequence[Include],
    base: Sequence[Found],
    planners: Planners,
    seen: set[int],
    limit: int,
) -> list[Found]:
    planner = planners()
    links = []
    for spec in specs:
        links.extend((_reverse if spec.reverse else _forward)(spec, base, planner))
    if not links or limit <= 0:
        return []
    (seen_name,) = planner.bind(sorted(seen))
    query = _round_query(tuple(links), seen_name, reader.postgres)
    rows = await reader.rows(query, {**planner.params, "limit": limit})
    found = [Found(r[0], r[1], r[2], bytes(r[3])) for r in rows]
    seen.update(f.pk for f in found)
    return found


async def included(
    reader: Reader,
    specs: Sequence[Include],
    matches: Sequence[Found],
    planners: Planners,
    limit: int,
) -> tuple[list[Found], bool]:
    """Included resources (not already among the matches), and whether ``limit`` cut them."""
    seen = {m.pk for m in matches}
    first = await _round(reader, specs, matches, planners, seen, limit + 1)
    iterate = [s for s in specs if s.iterate]
    second = (
        await _round(reader, iterate, first, planners, seen, limit + 1 - len(first))
        if iterate and first
        else []
    )
    everything = first + second
    return everything[:limit], len(everything) > limit
