"""The one module that turns parsed search criteria into SQL over the index tables.

Each criterion becomes an EXISTS over the index table of its parameter's type, so several
criteria AND together and the values inside one criterion OR together, exactly as FHIR says.
Date comparisons follow R4's range semantics: https://hl7.org/fhir/R4/search.html#prefix
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Column, ColumnElement, Exists, Table, and_, false, not_, or_, select, true

from service.db.tables import (
    idx_composite,
    idx_date,
    idx_reference,
    idx_string,
    idx_token,
    idx_token_text,
    resource,
)
from service.errors import BadRequest
from service.search.criteria import DATE_PREFIXES, Criteria, Criterion
from service.search.dates import date_range
from service.search.extraction import normalise, split_reference

_TABLE_FOR_TYPE: dict[str, Table] = {
    "token": idx_token,
    "reference": idx_reference,
    "string": idx_string,
    "date": idx_date,
    "composite": idx_composite,
}


def where(criteria: Criteria, base_url: str) -> ColumnElement[bool]:
    """A condition on ``resource`` rows matching every criterion."""
    clauses = [resource.c.type == criteria.resource_type, resource.c.deleted.is_(False)]
    clauses.extend(_criterion(criteria.resource_type, c, base_url) for c in criteria.criteria)
    return and_(*clauses)


def _exists(table: Table, resource_type: str, param: str, match: ColumnElement[bool]) -> Exists:
    return (
        select(table.c.resource_pk)
        .where(
            table.c.resource_pk == resource.c.pk,
            table.c.resource_type == resource_type,
            table.c.param == param,
            match,
        )
        .exists()
    )


def _criterion(resource_type: str, criterion: Criterion, base_url: str) -> ColumnElement[bool]:
    param, modifier = criterion.param, criterion.modifier
    if param.name == "_id":
        return resource.c.id.in_(criterion.values)
    if param.name == "_lastUpdated":
        return or_(
            *[
                _date_match(resource.c.last_updated, resource.c.last_updated, v)
                for v in criterion.values
            ]
        )
    if modifier == "missing":
        table = _TABLE_FOR_TYPE[param.type]
        present = _exists(table, resource_type, param.name, true())
        wanted = {"true": True, "false": False}.get(criterion.values[0])
        if wanted is None or len(criterion.values) != 1:
            raise BadRequest(f"'{param.name}:missing' takes true or false", code="value")
        return not_(present) if wanted else present
    if param.type == "token":
        return _token(resource_type, criterion)
    if param.type == "reference":
        return _reference(resource_type, criterion, base_url)
    if param.type == "string":
        return _string(resource_type, criterion)
    if param.type == "date":
        matches = [_date_match(idx_date.c.low, idx_date.c.high, v) for v in criterion.values]
        return _exists(idx_date, resource_type, param.name, or_(*matches))
    return _composite(resource_type, criterion, base_url)


def _token_match(system_col: Column[Any], code_col: Column[Any], value: str) -> ColumnElement[bool]:
    if "|" not in value:
        return code_col == value
    system, _, code = value.partition("|")
    if not system:
        return and_(system_col.is_(None), code_col == code)
    if not code:
        return system_col == system
    return and_(system_col == system, code_col == code)


def _token(resource_type: str, criterion: Criterion) -> ColumnElement[bool]:
    name, modifier = criterion.param.name, criterion.modifier
    if modifier == "text":
        matches = [idx_token_text.c.text.startswith(normalise(v)) for v in criterion.values]
        return _exists(idx_token_text, resource_type, name, or_(*matches))
    if modifier == "of-type":
        matches = []
        for value in criterion.values:
            parts = value.split("|")
            if len(parts) != 3:
                raise BadRequest(f"'{name}:of-type' takes system|code|value", code="value")
            matches.append(
                _token_match(
                    idx_token.c.system, idx_token.c.code, f"{parts[0]}|{parts[1]}|{parts[2]}"
                )
            )
        return _exists(idx_token, resource_type, f"{name}:of-type", or_(*matches))
    if modifier not in (None, "not"):
        raise BadRequest(
            f"Modifier ':{modifier}' is not supported on '{name}'", code="not-supported"
        )
    matches = [_token_match(idx_token.c.system, idx_token.c.code, v) for v in criterion.values]
    found = _exists(idx_token, resource_type, name, or_(*matches))
    return not_(found) if modifier == "not" else found


def _reference(resource_type: str, criterion: Criterion, base_url: str) -> ColumnElement[bool]:
    name, modifier = criterion.param.name, criterion.modifier
    if modifier == "identifier":
        return _by_identifier(resource_type, name, criterion.values)
    if modifier is not None and modifier not in criterion.param.targets:
        raise BadRequest(
            f"Modifier ':{modifier}' is not supported on '{name}'", code="not-supported"
        )
    matches = []
    for value in criterion.values:
        target_type, target_id, url = split_reference(value, base_url)
        if "/" not in value:
            type_match = idx_reference.c.target_type == modifier if modifier else true()
            matches.append(and_(idx_reference.c.target_id == value, type_match))
        elif url is not None:
            matches.append(idx_reference.c.url == url)
        elif target_type is not None:
            if modifier and modifier != target_type:
                matches.append(false())
            else:
                matches.append(
                    and_(
                        idx_reference.c.target_type == target_type,
                        idx_reference.c.target_id == target_id,
                    )
                )
    return _exists(idx_reference, resource_type, name, or_(*matches))


def _by_identifier(resource_type: str, name: str, values: tuple[str, ...]) -> ColumnElement[bool]:
    """``:identifier``: the reference's own identifier, or the identifier of the resource it
    points at (what GP systems mean by ``subject:identifier=<NHS number>``)."""
    own = [_token_match(idx_token.c.system, idx_token.c.code, v) for v in values]
    token = idx_token.alias("target_token")
    target = resource.alias("target")
    theirs = [_token_match(token.c.system, token.c.code, v) for v in values]
    via_target = (
        select(idx_reference.c.resource_pk)
        .join(
            target,
            and_(
                target.c.type == idx_reference.c.target_type,
                target.c.id == idx_reference.c.target_id,
            ),
        )
        .join(token, token.c.resource_pk == target.c.pk)
        .where(
            idx_reference.c.resource_pk == resource.c.pk,
            idx_reference.c.resource_type == resource_type,
            idx_reference.c.param == name,
            token.c.param == "identifier",
            or_(*theirs),
        )
        .exists()
    )
    return or_(_exists(idx_token, resource_type, f"{name}:identifier", or_(*own)), via_target)


def _string(resource_type: str, criterion: Criterion) -> ColumnElement[bool]:
    name, modifier = criterion.param.name, criterion.modifier
    matches: list[ColumnElement[bool]] = []
    for value in criterion.values:
        if modifier == "exact":
            matches.append(idx_string.c.exact == value)
        elif modifier == "contains":
            matches.append(idx_string.c.norm.contains(normalise(value), autoescape=True))
        elif modifier is None:
            matches.append(idx_string.c.norm.startswith(normalise(value), autoescape=True))
        else:
            raise BadRequest(
                f"Modifier ':{modifier}' is not supported on '{name}'", code="not-supported"
            )
    return _exists(idx_string, resource_type, name, or_(*matches))


def _composite(resource_type: str, criterion: Criterion, base_url: str) -> ColumnElement[bool]:
    matches = []
    for value in criterion.values:
        member, sep, role = value.partition("$")
        if not sep:
            raise BadRequest(f"'{criterion.param.name}' takes member$role", code="value")
        target_type, target_id, _ = split_reference(member, base_url)
        member_match = (
            and_(idx_composite.c.target_type == target_type, idx_composite.c.target_id == target_id)
            if target_type
            else idx_composite.c.target_id == member
        )
        role_match = _token_match(idx_composite.c.system, idx_composite.c.code, role)
        matches.append(and_(member_match, role_match))
    return _exists(idx_composite, resource_type, criterion.param.name, or_(*matches))


def _date_match(low: Column[Any], high: Column[Any], value: str) -> ColumnElement[bool]:
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
    slack = abs(to_us_now() - v_low) // 10
    return and_(low <= v_high + slack, high >= v_low - slack)


def to_us_now() -> int:
    return time.time_ns() // 1000
