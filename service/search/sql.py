"""The one module that turns parsed search criteria into SQL over the index tables.

Each criterion becomes an EXISTS over the index table of its parameter's type, correlated
with a ``resource`` row (the searched one, or a chain's target / a ``_has`` source, which get
their own aliases), so criteria AND together and the values inside one criterion OR
together, exactly as FHIR says. Access restrictions are criteria too: they are ANDed
wherever a resource of a type is matched, including chain targets and ``_has`` sources, so a
search cannot learn about records the caller may not see.
Date comparisons follow R4's range semantics: https://hl7.org/fhir/R4/search.html#prefix

Two steps, so that SQL is built and compiled once per *shape* of search rather than once per
request (building and compiling were half of a search's CPU): a ``Planner`` reads the values
(splitting tokens and references, turning dates into ranges, escaping patterns) into named
statement parameters and leaves a ``Match``, a plan holding no value, only the form of each
one; ``condition(match)`` builds SQL from the plan alone and is cached. Two searches that
differ only in their values share one plan, one statement and one prepared query.

Long text is indexed by its head (``service.db.tables``): a comparison with such a column
compares the heads, which the index answers, then the whole values (``same``), and a prefix
search looks up the range of heads that begin with the prefix, then matches the whole text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Exists,
    FromClause,
    Table,
    and_,
    bindparam,
    false,
    not_,
    or_,
    select,
    true,
    union_all,
)

from service.db.tables import (
    INDEXED_CHARACTERS,
    head,
    idx_composite,
    idx_date,
    idx_reference,
    idx_string,
    idx_token,
    idx_token_text,
    resource,
    same,
)
from service.search.criteria import DATE_PREFIXES, Criteria, Criterion
from service.search.dates import date_range
from service.search.extraction import normalise, split_reference
from service.search.parameters import SearchParam
from service.search.phonetic import sounds

# The criteria a caller's searches of a type are ANDed with; None: the type is out of reach.
Restrict = Callable[[str], Sequence[Criterion] | None]

_TABLE_FOR_TYPE: dict[str, Table] = {
    "token": idx_token,
    "reference": idx_reference,
    "string": idx_string,
    "date": idx_date,
    "uri": idx_token,
    "composite": idx_composite,
}
_LIKE_ESCAPE = "/"


def no_restrictions(_: str) -> Sequence[Criterion] | None:
    return ()


@dataclass(frozen=True)
class Value:
    """One searched value as the SQL uses it: its form (which comparison), and the names of
    the statement parameters holding its parts."""

    form: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Term:
    """One criterion, planned: its values, or a chain's targets, or a ``_has`` source."""

    param: SearchParam
    modifier: str | None
    values: tuple[Value, ...] = ()
    chain: tuple[Match, ...] = ()  # one per possible target type
    source: Match | None = None  # _has: the resources that must point here...
    via: str = ""  # ... through this reference parameter
    visible: tuple[Match, ...] = ()  # :identifier: the referenced types, as the caller sees them
    also: tuple[str, ...] = ()  # further reference parameters that may match instead


@dataclass(frozen=True)
class Match:
    """Current resources of ``type`` meeting every term, the caller's restrictions first;
    ``terms`` None: the type is out of the caller's reach."""

    type: str
    terms: tuple[Term, ...] | None


@dataclass
class Planner:
    """Reads one statement's values into its parameters (``v0``, ``v1``...), in the order the
    criteria come, so equal shapes get equal plans."""

    base_url: str
    restrict: Restrict = no_restrictions
    params: dict[str, Any] = field(default_factory=dict)

    def bind(self, *parts: Any) -> tuple[str, ...]:
        names = tuple(f"v{len(self.params) + i}" for i in range(len(parts)))
        self.params.update(zip(names, parts, strict=True))
        return names

    def match(self, resource_type: str, criteria: Sequence[Criterion] = ()) -> Match:
        restrictions = self.restrict(resource_type)
        if restrictions is None:
            return Match(resource_type, None)
        terms = tuple(self._term(c) for c in (*restrictions, *criteria))
        return Match(resource_type, terms)

    def where(self, criteria: Criteria, row: FromClause = resource) -> ColumnElement[bool]:
        """A condition on ``row`` matching every criterion; its values are in ``params``."""
        return condition(self.match(criteria.resource_type, criteria.criteria), row)

    def _term(self, criterion: Criterion) -> Term:
        param, modifier = criterion.param, criterion.modifier
        if criterion.has is not None:
            source = self.match(criterion.has.source_type, (criterion.has.criterion,))
            return Term(param, modifier, source=source, via=criterion.has.reference.name)
        if criterion.chain is not None:
            chain = tuple(self.match(t, (inner,)) for t, inner in criterion.chain.targets)
            return Term(param, modifier, chain=chain)
        values = tuple(self._value(criterion, v) for v in criterion.values)
        if modifier == "identifier":
            targets = tuple(self.match(t) for t in param.target_types())
            return Term(param, modifier, values, visible=targets)
        return Term(param, modifier, values, also=tuple(p.name for p in criterion.also))

    def _value(self, criterion: Criterion, value: str) -> Value:
        param, modifier = criterion.param, criterion.modifier
        if modifier == "missing":
            return Value(value)
        if param.name == "_id":
            return Value("id", self.bind(value))
        if param.type == "date":
            prefix, low, high = date_bounds(value)
            return Value(prefix, self.bind(low, high))
        if param.phonetic:
            return self._text(sounds(normalise(value)), False)
        if (param.type == "string" and modifier != "exact") or modifier == "text":
            return self._text(normalise(value), modifier == "contains")
        if param.type == "string":
            return Value("exact", self.bind(normalise(value), value))
        if param.type == "uri":  # the whole URI: no system to split off
            return Value("code", self.bind(value))
        if param.type == "token" or modifier == "identifier":
            form, parts = token_parts(value)
            return Value(form, self.bind(*parts))
        if param.type == "reference":
            return self._reference(value, modifier)
        member, _, role = value.partition("$")
        target_type, target_id, _ = split_reference(member, self.base_url)
        role_form, role_parts = token_parts(role)
        if target_type:
            return Value(f"typed {role_form}", self.bind(target_type, target_id, *role_parts))
        return Value(f"id {role_form}", self.bind(member, *role_parts))

    def _text(self, text: str, contains: bool) -> Value:
        """Normalised text that begins with (or ``contains``) ``text``: a prefix as the range
        of indexed heads beginning with it, then the pattern on the whole text."""
        pattern = _escaped(text) + "%"
        start = text[:INDEXED_CHARACTERS]
        end = _after(start)
        if contains or end is None:
            return Value("like", self.bind("%" + pattern if contains else pattern))
        return Value("prefix", self.bind(start, end, pattern))

    def _reference(self, value: str, modifier: str | None) -> Value:
        target_type, target_id, url = split_reference(value, self.base_url)
        if "/" not in value:
            return Value("id", self.bind(value))
        if url is not None:
            return Value("url", self.bind(url))
        if modifier and modifier != target_type:
            return Value("none")
        return Value("typed", self.bind(target_type, target_id))


def _escaped(text: str) -> str:
    for special in (_LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, _LIKE_ESCAPE + special)
    return text


def _after(prefix: str) -> str | None:
    """The least text after every text that begins with ``prefix``, in code-point order;
    None when there is none (an empty prefix)."""
    kept = prefix.rstrip(chr(0x10FFFF))
    if not kept:
        return None
    following = ord(kept[-1]) + 1
    return kept[:-1] + chr(0xE000 if 0xD800 <= following < 0xE000 else following)


def token_parts(value: str) -> tuple[str, tuple[str, ...]]:
    """A token search value's form and parts: ``code``, ``|code``, ``system|`` or both."""
    if "|" not in value:
        return "code", (value,)
    system, _, code = value.partition("|")
    if not system:
        return "no-system", (code,)
    if not code:
        return "system", (system,)
    return "system-code", (system, code)


def date_bounds(value: str) -> tuple[str, int, int]:
    """A date search value's prefix and range (``ap`` widened by a tenth of its distance
    from now, as the spec suggests)."""
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    body = value[2:] if value[:2] in DATE_PREFIXES else value
    low, high = date_range(body)
    if prefix == "ap":
        slack = abs(now_us() - low) // 10
        return prefix, low - slack, high + slack
    return prefix, low, high


def token_match(
    system_col: ColumnElement[Any], code_col: ColumnElement[Any], form: str, parts: Sequence[object]
) -> ColumnElement[bool]:
    if form == "code":
        return same(code_col, parts[0])
    if form == "no-system":
        return and_(system_col.is_(None), same(code_col, parts[0]))
    if form == "system":
        return same(system_col, parts[0])
    return and_(same(system_col, parts[0]), same(code_col, parts[1]))


def date_match(
    low: ColumnElement[Any], high: ColumnElement[Any], prefix: str, bounds: Sequence[object]
) -> ColumnElement[bool]:
    """R4 prefix semantics between a stored range and the searched value's range."""
    v_low, v_high = bounds
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
    return and_(low <= v_high, high >= v_low)  # ap: the bounds are already widened


def now_us() -> int:
    return time.time_ns() // 1000


# Building SQLAlchemy expressions is much of a search's Python time (each comparison costs
# tens of microseconds), so what a plan builds is cached. Expressions are immutable: one
# object may appear in many statements, and twice in one (each subquery has its own scope).


@lru_cache(maxsize=512)
def condition(match: Match, row: FromClause = resource) -> ColumnElement[bool]:
    """``row`` is a current resource the plan matches."""
    if match.terms is None:
        return false()
    clauses = [row.c.type == match.type, row.c.deleted.is_(False)]
    clauses.extend(_term(row, match.type, term) for term in match.terms)
    return and_(*clauses)


def visible(row: FromClause, matches: tuple[Match, ...]) -> ColumnElement[bool] | None:
    """``row`` is a current resource of one of the matches' types that the caller may see
    (each match holds only the caller's restrictions); None: it may see none of them."""
    allowed = [m for m in matches if m.terms is not None]
    if not allowed:
        return None
    if not any(m.terms for m in allowed):
        return and_(one_of(row.c.type, [m.type for m in allowed]), row.c.deleted.is_(False))
    return or_(*[condition(m, row) for m in allowed])


def _term(row: FromClause, resource_type: str, term: Term) -> ColumnElement[bool]:
    param, modifier, values = term.param, term.modifier, term.values
    if term.source is not None:
        return _has(row, resource_type, term)
    if term.chain:
        return _chain(row, resource_type, term)
    if param.name == "_id":
        return or_(*[row.c.id == _bind(v)[0] for v in values])
    if param.name == "_lastUpdated":
        updated = row.c.last_updated
        return or_(*[date_match(updated, updated, v.form, _bind(v)) for v in values])
    if modifier == "missing":
        present = _exists(_TABLE_FOR_TYPE[param.type], row, resource_type, param.name, true())
        return not_(present) if values[0].form == "true" else present
    if param.type in ("token", "uri"):
        return _token(row, resource_type, term)
    if modifier == "identifier":
        return _by_identifier(row, resource_type, term)
    if param.type == "reference":
        return _reference(row, resource_type, term)
    if param.type == "string":
        return _string(row, resource_type, term)
    if param.type == "date":
        matches = [date_match(idx_date.c.low, idx_date.c.high, v.form, _bind(v)) for v in values]
        return _exists(idx_date, row, resource_type, param.name, or_(*matches))
    return _composite(row, resource_type, term)


def _bind(value: Value) -> list[BindParameter[Any]]:
    return [bindparam(name) for name in value.names]


def _chain(row: FromClause, resource_type: str, term: Term) -> Exists:
    link = idx_reference.alias()
    target = resource.alias()
    return (
        select(link.c.resource_pk)
        .join(target, and_(target.c.type == link.c.target_type, target.c.id == link.c.target_id))
        .where(
            link.c.resource_pk == row.c.pk,
            link.c.resource_type == resource_type,
            link.c.param == term.param.name,
            or_(*[condition(match, target) for match in term.chain]),
        )
        .exists()
    )


def _has(row: FromClause, resource_type: str, term: Term) -> Exists:
    assert term.source is not None
    link = idx_reference.alias()
    source = resource.alias()
    return (
        select(source.c.pk)
        .join(link, link.c.resource_pk == source.c.pk)
        .where(
            link.c.resource_type == term.source.type,
            link.c.param == term.via,
            link.c.target_type == resource_type,
            link.c.target_id == row.c.id,
            condition(term.source, source),
        )
        .exists()
    )


def _reference(row: FromClause, resource_type: str, term: Term) -> ColumnElement[bool]:
    matches = []
    for value in term.values:
        parts = _bind(value)
        if value.form == "id":
            type_match = idx_reference.c.target_type == term.modifier if term.modifier else true()
            matches.append(and_(idx_reference.c.target_id == parts[0], type_match))
        elif value.form == "url":
            matches.append(idx_reference.c.url == parts[0])
        elif value.form == "none":
            matches.append(false())
        else:
            matches.append(
                and_(idx_reference.c.target_type == parts[0], idx_reference.c.target_id == parts[1])
            )
    names = (term.param.name, *term.also) if term.also else term.param.name
    return _exists(idx_reference, row, resource_type, names, or_(*matches))


def _by_identifier(row: FromClause, resource_type: str, term: Term) -> ColumnElement[bool]:
    """``:identifier``: the reference's own identifier, or the identifier of the resource it
    points at (what GP systems mean by ``subject:identifier=<NHS number>``)."""
    types = tuple(m.type for m in term.visible)
    target = resource.alias()
    allowed = visible(target, term.visible)
    identified = or_(
        *[token_match(idx_token.c.system, idx_token.c.code, v.form, _bind(v)) for v in term.values]
    )
    own = select(idx_token.c.resource_pk).where(
        idx_token.c.resource_type == resource_type,
        idx_token.c.param == f"{term.param.name}:identifier",
        identified,
    )
    joined = idx_token.join(target, target.c.pk == idx_token.c.resource_pk).join(
        idx_reference,
        and_(
            idx_reference.c.target_type == target.c.type,
            idx_reference.c.target_id == target.c.id,
        ),
    )
    via_target = (
        select(idx_reference.c.resource_pk)
        .select_from(joined)
        .where(
            idx_reference.c.resource_type == resource_type,
            idx_reference.c.param == term.param.name,
            one_of(idx_token.c.resource_type, types),
            idx_token.c.param == "identifier",
            identified,
            false() if allowed is None else allowed,
        )
    )
    # One IN over a UNION, not EXISTS OR EXISTS: PostgreSQL cannot turn an OR of
    # correlated subqueries into a join, so that form scanned every resource of the type
    # (13 ms at 2,000 patients, linear beyond); this one starts from the identifier's
    # index entry (0.3 ms).
    return row.c.pk.in_(union_all(own, via_target))


def _composite(row: FromClause, resource_type: str, term: Term) -> ColumnElement[bool]:
    matches = []
    for value in term.values:
        member_form, role_form = value.form.split(" ")
        parts = _bind(value)
        if member_form == "typed":
            member_match = and_(
                idx_composite.c.target_type == parts[0], idx_composite.c.target_id == parts[1]
            )
            parts = parts[2:]
        else:
            member_match = idx_composite.c.target_id == parts[0]
            parts = parts[1:]
        role_match = token_match(idx_composite.c.system, idx_composite.c.code, role_form, parts)
        matches.append(and_(member_match, role_match))
    return _exists(idx_composite, row, resource_type, term.param.name, or_(*matches))


def _token(row: FromClause, resource_type: str, term: Term) -> ColumnElement[bool]:
    name, modifier, values = term.param.name, term.modifier, term.values
    if modifier == "text":
        texts = [_text(idx_token_text.c.text, v) for v in values]
        return _exists(idx_token_text, row, resource_type, name, or_(*texts))
    matches = [token_match(idx_token.c.system, idx_token.c.code, v.form, _bind(v)) for v in values]
    indexed = f"{name}:of-type" if modifier == "of-type" else name
    found = _exists(idx_token, row, resource_type, indexed, or_(*matches))
    return not_(found) if modifier == "not" else found


def _string(row: FromClause, resource_type: str, term: Term) -> ColumnElement[bool]:
    matches: list[ColumnElement[bool]] = []
    for value in term.values:
        if value.form == "exact":
            norm, exact = _bind(value)
            matches.append(
                and_(head(idx_string.c.norm) == head(norm), same(idx_string.c.exact, exact))
            )
        else:
            matches.append(_text(idx_string.c.norm, value))
    return _exists(idx_string, row, resource_type, term.param.name, or_(*matches))


def _text(column: ColumnElement[str], value: Value) -> ColumnElement[bool]:
    """Normalised text matching a value ``Planner._text`` planned."""
    *bounds, pattern = _bind(value)
    matches = column.like(pattern, escape=_LIKE_ESCAPE)
    if value.form == "like":
        return matches
    start, end = bounds
    return and_(head(column) >= start, head(column) < end, matches)


def _exists(
    table: Table,
    row: FromClause,
    resource_type: str,
    param: str | tuple[str, ...],
    match: ColumnElement[bool],
) -> Exists:
    """Some index row of ``row`` for the parameter (or one of the parameters) matches."""
    named = table.c.param == param if isinstance(param, str) else one_of(table.c.param, param)
    return (
        select(table.c.resource_pk)
        .where(
            table.c.resource_pk == row.c.pk, table.c.resource_type == resource_type, named, match
        )
        .exists()
    )


def one_of(column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column`` equals one of a few values the registry fixes (types, parameter names).

    Not ``in_()``: that renders a placeholder per value when each statement executes, which
    undoes building the expression once.
    """
    return or_(false(), *[column == v for v in values])
