"""Search criteria parsed from a query string: a pure function, no database.

``parse`` turns ``[(name, value), ...]`` into criteria the SQL layer can run. Every value and
modifier is checked here, so a malformed search (a bad date or prefix, an unsupported
modifier, a chain too deep, too many parameters) is a ``BadRequest`` naming the parameter
before any SQL is built; unknown parameters are reported back so the caller can apply
``Prefer: handling``. Chains and ``_has`` go one level deep, as this server promises.
Spec: https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.errors import BadRequest
from service.search.dates import date_range
from service.search.parameters import (
    JOURNALED_TYPES,
    META_PARAMETERS,
    SEARCH_PARAMETERS,
    SearchParam,
    parameter,
)

DATE_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb", "ap")
COMMON_PARAMETERS = {
    "_id": SearchParam("_id", "token", (), "Logical id of the resource"),
    "_lastUpdated": SearchParam("_lastUpdated", "date", (), "When the resource last changed"),
    **{p.name: p for p in META_PARAMETERS},
}
_HAS = SearchParam("_has", "special", (), "Reverse chaining: resources that point at this one")
_MODIFIERS = {
    "token": {"not", "text", "missing", "of-type"},
    "string": {"exact", "contains", "missing"},
    "date": {"missing"},
    "reference": {"identifier", "missing"},
    "uri": {"missing"},
    "composite": {"missing"},
}


@dataclass(frozen=True)
class Limits:
    """How much one search may ask for; past these the search is refused, not run."""

    max_parameters: int = 50
    max_values: int = 200
    max_value_length: int = 8192


@dataclass(frozen=True)
class Chain:
    """``ref.param=v``: the reference must point at a resource matching one of these
    criteria, each parsed against one possible target type."""

    targets: tuple[tuple[str, Criterion], ...]


@dataclass(frozen=True)
class Has:
    """``_has:Source:ref:param=v``: some ``Source`` whose ``ref`` points here matches."""

    source_type: str
    reference: SearchParam
    criterion: Criterion


@dataclass(frozen=True)
class Criterion:
    """One parameter occurrence: the values are ORed; several criteria are ANDed.

    ``confining`` marks a caller's confinement to its patient (``restriction``): where a
    record names several patients (an AuditEvent about a search), every one it names must be
    among the values, not just one of them. ``also`` names further reference parameters any
    of which may point at the values instead (a compartment: a CareTeam's patient or one of
    its participants).
    """

    param: SearchParam
    modifier: str | None
    values: tuple[str, ...]
    chain: Chain | None = None
    has: Has | None = None
    confining: bool = False
    also: tuple[SearchParam, ...] = ()


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
    return COMMON_PARAMETERS.get(name) or parameter(resource_type, name)


def searchable_types() -> tuple[str, ...]:
    return tuple(SEARCH_PARAMETERS)


def parse(
    resource_type: str, pairs: Sequence[tuple[str, str]], limits: Limits | None = None
) -> Criteria:
    limits = limits or Limits()
    if len(pairs) > limits.max_parameters:
        raise BadRequest(
            f"A search may have at most {limits.max_parameters} parameters", code="too-costly"
        )
    for key, raw in pairs:
        if "\x00" in key or "\x00" in raw:
            raise BadRequest(f"Search parameter '{key!r}' contains a NUL character", code="value")
    result = Criteria(resource_type)
    total_values = 0
    for key, raw in pairs:
        common = key.partition(":")[0] in COMMON_PARAMETERS
        if key.startswith("_") and not common and not key.startswith("_has:"):
            continue  # result-control parameters are read by the caller
        values = tuple(split_values(raw))
        total_values += len(values)
        if total_values > limits.max_values:
            raise BadRequest(
                f"'{key}': a search may have at most {limits.max_values} values in all",
                code="too-costly",
            )
        for value in values:
            if len(value) > limits.max_value_length:
                raise BadRequest(f"Search parameter '{key}' has a value too long", code="value")
        criterion = _parse_key(resource_type, key, values)
        if criterion is None:
            result.unknown.append(key)
        else:
            result.criteria.append(criterion)
    return result


def restriction(
    resource_type: str, name: str, values: tuple[str, ...], *, confining: bool = False
) -> Criterion | None:
    """One criterion of a caller's reach (``Access.restrictions``), its values taken as they
    are: they were split once where the scope was read and are never split again. None: a
    restriction this server cannot apply (the caller fails closed)."""
    if name.startswith("_has") or "." in name:
        return None
    criterion = _parse_plain(resource_type, name, values)
    if criterion is None:
        return None
    return Criterion(criterion.param, criterion.modifier, criterion.values, confining=confining)


def in_compartment(resource_type: str, names: Sequence[str], patient_id: str) -> Criterion:
    """Records of ``resource_type`` in a patient's compartment: one of the reference
    parameters ``names`` points at the patient (the patient itself: ``names`` empty)."""
    if not names:
        return Criterion(COMMON_PARAMETERS["_id"], None, (patient_id,))
    first, *rest = (_defined(resource_type, name) for name in names)
    return Criterion(first, None, (f"Patient/{patient_id}",), also=tuple(rest))


def pointed_at_by(source_type: str, reference: SearchParam, criterion: Criterion) -> Criterion:
    """``_has`` built in code: some ``source_type`` meeting ``criterion`` points here
    through ``reference``."""
    return Criterion(_HAS, None, criterion.values, has=Has(source_type, reference, criterion))


def _defined(resource_type: str, name: str) -> SearchParam:
    found = parameter(resource_type, name)
    if found is None:
        raise LookupError(f"{resource_type} has no search parameter '{name}'")
    return found


def _parse_key(resource_type: str, key: str, values: tuple[str, ...]) -> Criterion | None:
    if key.startswith("_has:"):
        return _parse_has(resource_type, key, values)
    head, dot, rest = key.partition(".")
    if dot:
        return _parse_chain(resource_type, key, head, rest, values)
    return _parse_plain(resource_type, key, values)


def _parse_plain(resource_type: str, key: str, values: tuple[str, ...]) -> Criterion | None:
    name, _, modifier = key.partition(":")
    param = lookup(resource_type, name)
    if param is None:
        return None
    criterion = Criterion(param, modifier or None, values)
    _check(criterion, key)
    return criterion


def _parse_chain(
    resource_type: str, key: str, head: str, rest: str, values: tuple[str, ...]
) -> Criterion | None:
    name, _, type_modifier = head.partition(":")
    param = parameter(resource_type, name)
    if param is None:
        return None
    if param.type != "reference":
        raise BadRequest(f"'{key}': only reference parameters can be chained", code="value")
    if "." in rest or rest.startswith("_has"):
        raise BadRequest(f"'{key}': chains may be one level deep", code="too-costly")
    if type_modifier and not param.refers_to(type_modifier):
        raise BadRequest(f"'{key}': '{name}' cannot refer to '{type_modifier}'", code="value")
    candidates = [type_modifier] if type_modifier else list(param.target_types())
    targets: list[tuple[str, Criterion]] = []
    for target in candidates:
        if target in SEARCH_PARAMETERS and lookup(target, rest.partition(":")[0]) is not None:
            inner = _parse_plain(target, rest, values)
            if inner is not None:
                targets.append((target, inner))
    if not targets:
        return None  # no target defines the chained parameter: unknown, as a plain one is
    return Criterion(param, type_modifier or None, values, chain=Chain(tuple(targets)))


def _parse_has(resource_type: str, key: str, values: tuple[str, ...]) -> Criterion | None:
    parts = key.split(":")
    if len(parts) < 4:
        raise BadRequest(f"'{key}': _has takes _has:Type:reference:parameter", code="value")
    source, ref_name, inner_key = parts[1], parts[2], ":".join(parts[3:])
    if source in JOURNALED_TYPES:
        raise BadRequest(
            f"'{key}': AuditEvents are kept in the audit journal, which _has cannot reach",
            code="not-supported",
        )
    if inner_key.startswith("_has") or "." in inner_key:
        raise BadRequest(f"'{key}': _has may be one level deep", code="too-costly")
    reference = parameter(source, ref_name)
    if reference is None or reference.type != "reference":
        raise BadRequest(f"'{key}': '{source}' has no reference parameter '{ref_name}'")
    if not reference.refers_to(resource_type):
        raise BadRequest(f"'{key}': '{source}.{ref_name}' cannot refer to '{resource_type}'")
    inner = _parse_plain(source, inner_key, values)
    if inner is None:
        return None  # an unknown parameter of the source type: unknown, as a plain one is
    return Criterion(_HAS, None, values, has=Has(source, reference, inner))


def _check(criterion: Criterion, key: str) -> None:
    param, modifier = criterion.param, criterion.modifier
    if modifier is not None:
        # _id and _lastUpdated are the resource row's own columns: no modifier applies
        indexed = param.paths or not param.name.startswith("_")
        allowed = _MODIFIERS.get(param.type, set()) if indexed else set()
        if param.type == "reference":  # a type it names, served here or not (:Encounter)
            allowed = allowed | set(param.targets or param.target_types())
        if modifier == "of-type" and param.name != "identifier":
            allowed = set()
        if param.phonetic:  # a code of how it sounds: neither exact nor contained text
            allowed = {"missing"}
        if modifier not in allowed:
            raise BadRequest(f"Modifier ':{modifier}' is not supported on '{key}'", code="value")
    for value in criterion.values:
        _check_value(param, modifier, key, value)


def _check_value(param: SearchParam, modifier: str | None, key: str, value: str) -> None:
    if value == "":
        raise BadRequest(f"Search parameter '{key}' has an empty value", code="value")
    if modifier == "missing":
        if value not in ("true", "false") or "," in value:
            raise BadRequest(f"'{key}' takes true or false", code="value")
    elif param.type == "date":
        body = value[2:] if value[:2] in DATE_PREFIXES else value
        try:
            date_range(body)
        except ValueError as error:
            raise BadRequest(f"Search parameter '{key}': {error}", code="value") from error
    elif modifier == "of-type" and len(value.split("|")) != 3:
        raise BadRequest(f"'{key}' takes system|code|value", code="value")
    elif param.type == "composite" and "$" not in value:
        raise BadRequest(f"'{key}' takes member$role", code="value")
