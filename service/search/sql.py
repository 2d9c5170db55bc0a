"""The one module that turns parsed search criteria into SQL over the index tables.

Each criterion becomes an EXISTS over the index table of its parameter's type, correlated
with a ``resource`` row (the searched one, or a chain's target / a ``_has`` source, which get
their own aliases), so criteria AND together and the values inside one criterion OR
together, exactly as FHIR says. Access restrictions are criteria too: ``restrict(type)`` is
ANDed wherever a resource of that type is matched, including chain targets and ``_has``
sources, so a search cannot learn about records the caller may not see.
Date comparisons follow R4's range semantics: https://hl7.org/fhir/R4/search.html#prefix
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Exists,
    FromClause,
    Table,
    and_,
    false,
    not_,
    or_,
    select,
    true,
    union_all,
)

from service.db.tables import (
    idx_composite,
    idx_date,
    idx_reference,
    idx_string,
    idx_token,
    idx_token_text,
    resource,
)
from service.search.criteria import DATE_PREFIXES, Criteria, Criterion
from service.search.dates import date_range
from service.search.extraction import normalise, split_reference

# The criteria a caller's searches of a type are ANDed with; None: the type is out of reach.
Restrict = Callable[[str], Sequence[Criterion] | None]

_TABLE_FOR_TYPE: dict[str, Table] = {
    "token": idx_token,
    "reference": idx_reference,
    "string": idx_string,
    "date": idx_date,
    "composite": idx_composite,
}


def no_restrictions(_: str) -> Sequence[Criterion] | None:
    return ()


class _Builder:
    """Builds conditions for one search: the base URL and restrictions are fixed for it."""

    def __init__(self, base_url: str, restrict: Restrict) -> None:
        self.base_url = base_url
        self.restrict = restrict

    def matching(
        self, row: FromClause, resource_type: str, criteria: Sequence[Criterion]
    ) -> ColumnElement[bool]:
        """``row`` is a current resource of ``resource_type`` meeting every criterion."""
        restrictions = self.restrict(resource_type)
        if restrictions is None:
            return false()
        clauses = [row.c.type == resource_type, row.c.deleted.is_(False)]
        for criterion in (*restrictions, *criteria):
            clauses.append(self.criterion(row, resource_type, criterion))
        return and_(*clauses)

    def criterion(
        self, row: FromClause, resource_type: str, criterion: Criterion
    ) -> ColumnElement[bool]:
        param, modifier, values = criterion.param, criterion.modifier, criterion.values
        if criterion.has is not None:
            return self.has(row, resource_type, criterion)
        if criterion.chain is not None:
            return self.chain(row, resource_type, criterion)
        if param.name == "_id":
            return row.c.id.in_(values)
        if param.name == "_lastUpdated":
            return or_(*[date_match(row.c.last_updated, row.c.last_updated, v) for v in values])
        if modifier == "missing":
            present = _exists(_TABLE_FOR_TYPE[param.type], row, resource_type, param.name, true())
            return not_(present) if values[0] == "true" else present
        if param.type == "token":
            return _token(row, resource_type, criterion)
        if param.type == "reference":
            return self.reference(row, resource_type, criterion)
        if param.type == "string":
            return _string(row, resource_type, criterion)
        if param.type == "date":
            matches = [date_match(idx_date.c.low, idx_date.c.high, v) for v in values]
            return _exists(idx_date, row, resource_type, param.name, or_(*matches))
        return self.composite(row, resource_type, criterion)

    def visible(self, row: FromClause, types: Sequence[str]) -> ColumnElement[bool]:
        """``row`` is of one of ``types`` and within the caller's restrictions for it."""
        restrictions_of = [(t, self.restrict(t)) for t in types]
        if all(r is not None and not r for _, r in restrictions_of):
            return _of_types(row, tuple(types))
        options = []
        for t, restrictions in restrictions_of:
            if restrictions is not None:
                options.append(
                    and_(row.c.type == t, *[self.criterion(row, t, c) for c in restrictions])
                )
        return or_(false(), *options)

    def chain(self, row: FromClause, resource_type: str, criterion: Criterion) -> Exists:
        assert criterion.chain is not None
        link = idx_reference.alias()
        target = resource.alias()
        options = [self.matching(target, t, [inner]) for t, inner in criterion.chain.targets]
        return (
            select(link.c.resource_pk)
            .join(
                target,
                and_(target.c.type == link.c.target_type, target.c.id == link.c.target_id),
            )
            .where(
                link.c.resource_pk == row.c.pk,
                link.c.resource_type == resource_type,
                link.c.param == criterion.param.name,
                or_(*options),
            )
            .exists()
        )

    def has(self, row: FromClause, resource_type: str, criterion: Criterion) -> Exists:
        assert criterion.has is not None
        link = idx_reference.alias()
        source = resource.alias()
        return (
            select(source.c.pk)
            .join(link, link.c.resource_pk == source.c.pk)
            .where(
                link.c.resource_type == criterion.has.source_type,
                link.c.param == criterion.has.reference.name,
                link.c.target_type == resource_type,
                link.c.target_id == row.c.id,
                self.matching(source, criterion.has.source_type, [criterion.has.criterion]),
            )
            .exists()
        )

    def reference(
        self, row: FromClause, resource_type: str, criterion: Criterion
    ) -> ColumnElement[bool]:
        name, modifier = criterion.param.name, criterion.modifier
        if modifier == "identifier":
            return self.by_identifier(row, resource_type, criterion)
        matches = []
        for value in criterion.values:
            target_type, target_id, url = split_reference(value, self.base_url)
            if "/" not in value:
                type_match = idx_reference.c.target_type == modifier if modifier else true()
                matches.append(and_(idx_reference.c.target_id == value, type_match))
            elif url is not None:
                matches.append(idx_reference.c.url == url)
            elif modifier and modifier != target_type:
                matches.append(false())
            else:
                matches.append(
                    and_(
                        idx_reference.c.target_type == target_type,
                        idx_reference.c.target_id == target_id,
                    )
                )
        return _exists(idx_reference, row, resource_type, name, or_(*matches))

    def by_identifier(
        self, row: FromClause, resource_type: str, criterion: Criterion
    ) -> ColumnElement[bool]:
        """``:identifier``: the reference's own identifier, or the identifier of the
        resource it points at (what GP systems mean by ``subject:identifier=<NHS number>``)."""
        values, types = criterion.values, criterion.param.target_types()
        parts = _identifier_parts(resource_type, criterion.param.name, types)
        identified = or_(*[token_match(idx_token.c.system, idx_token.c.code, v) for v in values])
        own = select(idx_token.c.resource_pk).where(parts.own, identified)
        via_target = (
            select(idx_reference.c.resource_pk)
            .select_from(parts.joined)
            .where(parts.via, identified, self.visible(parts.target, types))
        )
        # One IN over a UNION, not EXISTS OR EXISTS: PostgreSQL cannot turn an OR of
        # correlated subqueries into a join, so that form scanned every resource of the type
        # (13 ms at 2,000 patients, linear beyond); this one starts from the identifier's
        # index entry (0.3 ms).
        return row.c.pk.in_(union_all(own, via_target))

    def composite(
        self, row: FromClause, resource_type: str, criterion: Criterion
    ) -> ColumnElement[bool]:
        matches = []
        for value in criterion.values:
            member, _, role = value.partition("$")
            target_type, target_id, _ = split_reference(member, self.base_url)
            member_match = (
                and_(
                    idx_composite.c.target_type == target_type,
                    idx_composite.c.target_id == target_id,
                )
                if target_type
                else idx_composite.c.target_id == member
            )
            role_match = token_match(idx_composite.c.system, idx_composite.c.code, role)
            matches.append(and_(member_match, role_match))
        return _exists(idx_composite, row, resource_type, criterion.param.name, or_(*matches))


def where(
    criteria: Criteria,
    base_url: str,
    restrict: Restrict = no_restrictions,
    row: FromClause = resource,
) -> ColumnElement[bool]:
    """A condition on ``resource`` rows (or ``row``) matching every criterion."""
    return _Builder(base_url, restrict).matching(row, criteria.resource_type, criteria.criteria)


def _exists(
    table: Table, row: FromClause, resource_type: str, param: str, match: ColumnElement[bool]
) -> Exists:
    return (
        select(table.c.resource_pk)
        .where(_index_of(table, row, resource_type, param), match)
        .exists()
    )


# Building SQLAlchemy expressions is most of a search's Python time (each comparison costs
# tens of microseconds), so the parts that depend on the types and parameters searched but
# not on the values searched for are built once. Expressions are immutable: one object may
# appear in many statements, and twice in one (each subquery has its own scope).


@lru_cache(maxsize=1024)
def _index_of(table: Table, row: FromClause, resource_type: str, param: str) -> ColumnElement[bool]:
    """An index table's rows for ``param`` of the ``resource_type`` resource ``row``."""
    return and_(
        table.c.resource_pk == row.c.pk,
        table.c.resource_type == resource_type,
        table.c.param == param,
    )


@lru_cache(maxsize=256)
def _of_types(row: FromClause, types: tuple[str, ...]) -> ColumnElement[bool]:
    return or_(false(), *[and_(row.c.type == t) for t in types])


@dataclass(frozen=True)
class _IdentifierParts:
    """What ``:identifier`` on one reference parameter of one type matches, but the values."""

    target: FromClause  # the referenced resource
    own: ColumnElement[bool]  # the reference's own identifier, in the token index
    joined: FromClause  # identifier index -> target resource -> reference index
    via: ColumnElement[bool]  # ... restricted to this parameter and the target's identifier


@lru_cache(maxsize=256)
def _identifier_parts(resource_type: str, name: str, types: tuple[str, ...]) -> _IdentifierParts:
    # Plain tables where no enclosing query uses them (an alias's columns cost ~0.1 ms to
    # build); the target is an alias, as ``row`` may be ``resource`` itself.
    target = resource.alias()
    joined = idx_token.join(target, target.c.pk == idx_token.c.resource_pk).join(
        idx_reference,
        and_(
            idx_reference.c.target_type == target.c.type,
            idx_reference.c.target_id == target.c.id,
        ),
    )
    via = and_(
        idx_reference.c.resource_type == resource_type,
        idx_reference.c.param == name,
        target.c.deleted.is_(False),
        one_of(idx_token.c.resource_type, types),
        idx_token.c.param == "identifier",
    )
    own = and_(
        idx_token.c.resource_type == resource_type,
        idx_token.c.param == f"{name}:identifier",
    )
    return _IdentifierParts(target, own, joined, via)


def one_of(column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column`` equals one of a few values the registry fixes (types, parameter names).

    Not ``in_()``: that renders a placeholder per value when each statement executes, which
    undoes building the expression once.
    """
    return or_(false(), *[column == v for v in values])


def token_match(
    system_col: ColumnElement[Any], code_col: ColumnElement[Any], value: str
) -> ColumnElement[bool]:
    if "|" not in value:
        return code_col == value
    system, _, code = value.partition("|")
    if not system:
        return and_(system_col.is_(None), code_col == code)
    if not code:
        return system_col == system
    return and_(system_col == system, code_col == code)


def _token(row: FromClause, resource_type: str, criterion: Criterion) -> ColumnElement[bool]:
    name, modifier, values = criterion.param.name, criterion.modifier, criterion.values
    if modifier == "text":
        matches = [idx_token_text.c.text.startswith(normalise(v), autoescape=True) for v in values]
        return _exists(idx_token_text, row, resource_type, name, or_(*matches))
    if modifier == "of-type":
        matches = [token_match(idx_token.c.system, idx_token.c.code, v) for v in values]
        return _exists(idx_token, row, resource_type, f"{name}:of-type", or_(*matches))
    matches = [token_match(idx_token.c.system, idx_token.c.code, v) for v in values]
    found = _exists(idx_token, row, resource_type, name, or_(*matches))
    return not_(found) if modifier == "not" else found


def _string(row: FromClause, resource_type: str, criterion: Criterion) -> ColumnElement[bool]:
    matches: list[ColumnElement[bool]] = []
    for value in criterion.values:
        if criterion.modifier == "exact":
            matches.append(idx_string.c.exact == value)
        elif criterion.modifier == "contains":
            matches.append(idx_string.c.norm.contains(normalise(value), autoescape=True))
        else:
            matches.append(idx_string.c.norm.startswith(normalise(value), autoescape=True))
    return _exists(idx_string, row, resource_type, criterion.param.name, or_(*matches))


def date_match(
    low: ColumnElement[Any], high: ColumnElement[Any], value: str
) -> ColumnElement[bool]:
    """R4 prefix semantics between a stored range and the searched value's range."""
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    body = value[2:] if value[:2] in DATE_PREFIXES else value
    v_low, v_high = date_range(body)
    if prefix == "eq":
        return and_(low >= v_low, high <= v_high)
    if prefix == "ne":
        return or_(low < v_low, high > v_high)
    if prefix == "lt":
        return low < v_low
    if prefix == "le":
        return low <= v_high
    if prefix == "gt":
        return high > v_high
    if prefix == "ge":
        return high >= v_low
    if prefix == "sa":
        return low > v_high
    if prefix == "eb":
        return high < v_low
    slack = abs(now_us() - v_low) // 10
    return and_(low <= v_high + slack, high >= v_low - slack)


def now_us() -> int:
    return time.time_ns() // 1000
