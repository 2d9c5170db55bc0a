"""``_include`` and ``_revinclude``: the resources a page of matches points at, or that point
at it, found through the reference index in both directions (never by parsing resources).

Generic over the registry: any registered type with a reference parameter can be included
or reverse-included (``Provenance:target`` works as soon as Provenance is registered).
``:iterate`` directives are applied once more to what the first round found — one extra hop,
which bounds the work. Each included resource must be visible to the caller: its type one
the caller may search, and within the caller's restrictions for it. On PostgreSQL a search's
first round goes in its page's own statement (``page_with_included``): one round trip, not
two, for the commonest include, a page of CareTeams with their participants.
https://hl7.org/fhir/R4/search.html#include
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    FromClause,
    Select,
    and_,
    any_,
    bindparam,
    literal,
    not_,
    null,
    or_,
    select,
    union_all,
)

from service.db.engine import Reader
from service.db.tables import idx_reference, resource
from service.search.controls import Include, SortKey
from service.search.parameters import SEARCH_PARAMETERS, SearchParam
from service.search.runner import Key, Page, ordered, page_arguments, page_of, page_query
from service.search.sql import Match, Planner, one_of, visible

Planners = Callable[[], Planner]  # a fresh planner for one statement, with the caller's scope


@dataclass(frozen=True)
class Found:
    pk: int
    type: str
    id: str
    content: bytes


Base = Sequence[Found] | str  # resources to include from, or a page of matches of a type
_FROM_PAGE = ""  # a link's keys are the page's own matches (``page_with_included``)


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


def _forward(spec: Include, base: Base, planner: Planner) -> list[_Link]:
    """Links to the targets of the base resources' references."""
    links = []
    for source in _types(base):
        if spec.source not in ("*", source):
            continue
        params = [p for p in _reference_params(source) if spec.param in ("*", p.name)]
        targets = {t for p in params for t in p.target_types() if spec.target in (None, t)}
        allowed = tuple(planner.match(t) for t in sorted(targets))
        if not params or all(m.terms is None for m in allowed):
            continue
        keys = _keys(planner, base, source, lambda f: f.pk)
        links.append(_Link(False, source, tuple(p.name for p in params), "", allowed, keys))
    return links


def _reverse(spec: Include, base: Base, planner: Planner) -> list[_Link]:
    """Links to the resources whose references point at the base."""
    links = []
    for target in _types(base):
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
            keys = _keys(planner, base, target, lambda f: f.id)
            links.append(_Link(True, source, names, target, (allowed,), keys))
    return links


def _types(base: Base) -> list[str]:
    return [base] if isinstance(base, str) else sorted({f.type for f in base})


def _keys(planner: Planner, base: Base, of_type: str, key: Callable[[Found], Any]) -> str:
    """The parameter holding the keys (forward) or ids (reverse) of the base resources of a
    type; ``_FROM_PAGE`` for a page's matches, which its own statement supplies."""
    if isinstance(base, str):
        return _FROM_PAGE
    (name,) = planner.bind([key(f) for f in base if f.type == of_type])
    return name


def _among(column: ColumnElement[Any], name: str, postgres: bool) -> ColumnElement[bool]:
    """``column`` is one of the values in parameter ``name``. On PostgreSQL one array
    parameter (``= ANY``): ``IN`` renders a placeholder per value, so each page size would
    make new SQL to compile and prepare; SQLite has no arrays."""
    if not postgres:
        return column.in_(bindparam(name, expanding=True))
    return column == any_(bindparam(name, type_=ARRAY(column.type)))


def _reached(link: _Link, postgres: bool, page: FromClause | None = None) -> ColumnElement[bool]:
    """What ``link`` reaches; its keys from ``page`` (pk, id) when they come from the page."""
    allowed = visible(resource, link.visible)
    assert allowed is not None  # links are only planned to types the caller may see
    names = one_of(idx_reference.c.param, link.names)
    if link.reverse:
        pointing = and_(
            idx_reference.c.resource_pk == resource.c.pk,
            idx_reference.c.resource_type == link.source,
            names,
            idx_reference.c.target_type == link.target,
            idx_reference.c.target_id.in_(select(page.c.id))
            if page is not None
            else _among(idx_reference.c.target_id, link.keys, postgres),
        )
    else:
        pointing = and_(
            idx_reference.c.resource_pk.in_(select(page.c.pk))
            if page is not None
            else _among(idx_reference.c.resource_pk, link.keys, postgres),
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


def page_links(specs: Sequence[Include], resource_type: str, planner: Planner) -> tuple[_Link, ...]:
    """The first round's links for a page of matches of ``resource_type``, their keys taken
    from the page in its own statement (``page_with_included``); none when a directive
    iterates (its second round needs the first's results)."""
    if any(spec.iterate for spec in specs):
        return ()
    links: list[_Link] = []
    for spec in specs:
        links.extend((_reverse if spec.reverse else _forward)(spec, resource_type, planner))
    return tuple(links)


@lru_cache(maxsize=128)
def _with_included(
    page: Select[Any], keys: tuple[Key, ...], forward: bool, links: tuple[_Link, ...]
) -> Select[Any]:
    """A page's statement and its first include round as one (PostgreSQL): rows of kind 0
    are the page's (pk, id, content, k0...), in its order; of kind 1 what it includes (pk,
    type, id, content), by key. The round reaches from the page's first ``count`` rows (the
    one more that proves a next page is not a match here) and leaves them out, and is
    limited to ``included`` rows."""
    matches = page.cte("page")
    first = select(matches.c.pk, matches.c.id)
    first = first.order_by(*ordered(keys, forward, columns=matches.c)).limit(bindparam("count"))
    firsts = first.cte("firsts")
    reached = (
        select(resource.c.pk, resource.c.type, resource.c.id, resource.c.content)
        .where(
            or_(*[_reached(link, True, firsts) for link in links]),
            resource.c.pk.not_in(select(firsts.c.pk)),
        )
        .order_by(resource.c.pk)
        .limit(bindparam("included"))
        .subquery()
    )
    width = len(keys)
    rows = union_all(
        select(
            literal(0).label("kind"),
            matches.c.pk,
            null().label("type"),
            matches.c.id,
            matches.c.content,
            *[matches.c[f"k{i}"] for i in range(width)],
        ),
        select(
            literal(1),
            reached.c.pk,
            reached.c.type,
            reached.c.id,
            reached.c.content,
            *[null() for _ in range(width)],
        ),
    ).subquery()
    return select(rows).order_by(rows.c.kind, *ordered(keys, forward, columns=rows.c), rows.c.pk)


async def page_with_included(
    reader: Reader,
    resource_type: str,
    condition: ColumnElement[bool],
    planner: Planner,
    sort: tuple[SortKey, ...],
    links: tuple[_Link, ...],
    *,
    count: int,
    position: Sequence[Any] | None,
    forward: bool,
    limit: int,
) -> tuple[Page, list[Found], bool]:
    """PostgreSQL: a page and what it includes, one statement (a round trip fewer than
    ``page`` then ``included``), the same answer; the links from ``page_links``, planned with
    the page's own ``planner`` (the statement's parameters are numbered across both)."""
    query, keys = page_query(resource_type, condition, sort, True, position is not None, forward)
    arguments = page_arguments(planner.params, count, keys, position)
    if arguments is None:
        return Page([], [], [], False), [], False
    statement = _with_included(query, keys, forward, links)
    arguments.update(count=count, included=limit + 1)
    rows = await reader.rows(statement, arguments)
    found = page_of([(r[1], *r[3:]) for r in rows if r[0] == 0], count, forward)
    extra = [Found(r[1], r[2], r[3], bytes(r[4])) for r in rows if r[0] == 1]
    return found, extra[:limit], len(extra) > limit
