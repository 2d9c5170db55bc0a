"""Search criteria parsed from a query string: a pure function, no database.

``parse`` turns ``[(name, value), ...]`` into criteria the SQL layer can run; values that
cannot be understood are a ``BadRequest`` naming the parameter, unknown parameters are
reported back so the caller can apply ``Prefer: handling``. Spec:
https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.errors import BadRequest
from service.search.dates import date_range
from service.search.parameters import SearchParam, parameter

DATE_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb", "ap")
_COMMON = {
    "_id": SearchParam("_id", "token", (), "Logical id of the resource"),
    "_lastUpdated": SearchParam("_lastUpdated", "date", (), "When the resource last changed"),
}


@dataclass(frozen=True)
class Criterion:
    """One parameter occurrence: the values are ORed; several criteria are ANDed."""

    param: SearchParam
    modifier: str | None
    values: tuple[str, ...]


@dataclass
class Criteria:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def split_values(raw: str) -> list[str]:
    """Split on commas that are not escaped with a backslash, and unescape."""
    parts = re.split(r"(?<!\\),", raw)
    return [p.replace("\\,", ",").replace("\\$", "$").replace("\\|", "|") for p in parts]


def lookup(resource_type: str, name: str) -> SearchParam | None:
    return _COMMON.get(name) or parameter(resource_type, name)


def parse(resource_type: str, pairs: Sequence[tuple[str, str]]) -> Criteria:
    result = Criteria(resource_type)
    for key, raw in pairs:
        if key.startswith("_") and key not in _COMMON:
            continue  # result-control parameters are read by the caller
        name, _, modifier = key.partition(":")
        param = lookup(resource_type, name)
        if param is None:
            result.unknown.append(key)
            continue
        values = tuple(split_values(raw))
        for value in values:
            _check(param, key, value)
        result.criteria.append(Criterion(param, modifier or None, values))
    return result


def _check(param: SearchParam, key: str, value: str) -> None:
    if value == "":
        raise BadRequest(f"Search parameter '{key}' has an empty value", code="value")
    if param.type == "date":
        body = value[2:] if value[:2] in DATE_PREFIXES else value
        try:
            date_range(body)
        except ValueError as error:
            raise BadRequest(f"Search parameter '{key}': {error}", code="value") from error
