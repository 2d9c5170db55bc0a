"""Result parameters of a search (``_sort``, ``_count``, ``_include``, ``_summary`` ...),
parsed and checked without touching the database, so malformed ones are a 400 naming them.

https://hl7.org/fhir/R4/search.html#return
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.errors import BadRequest
from service.search.criteria import searchable_types, split_values
from service.search.parameters import JOURNALED_TYPES, SEARCH_PARAMETERS, parameter

# Parameters whose order is well defined; ``_lastUpdated`` is kept on the resource row.
SORTABLE = ("_lastUpdated", "date", "name", "family", "birthdate", "status")
CONTROL_PARAMETERS = (
    "_count",
    "_total",
    "_summary",
    "_elements",
    "_sort",
    "_include",
    "_include:iterate",
    "_revinclude",
    "_revinclude:iterate",
    "_cursor",
    "_format",
    "_pretty",
)


@dataclass(frozen=True)
class SortKey:
    name: str
    descending: bool


@dataclass(frozen=True)
class Include:
    """``Source:param[:Target]``; ``param`` is ``*`` for every reference parameter."""

    source: str
    param: str
    target: str | None
    reverse: bool
    iterate: bool


@dataclass(frozen=True)
class Controls:
    count: int
    total: bool
    summary: str | None
    elements: tuple[str, ...]
    sort: tuple[SortKey, ...]
    includes: tuple[Include, ...]

    @property
    def sort_text(self) -> str:
        return ",".join(("-" if k.descending else "") + k.name for k in self.sort)


def parse_controls(
    resource_type: str,
    pairs: Sequence[tuple[str, str]],
    *,
    default_count: int,
    max_count: int,
    max_includes: int,
) -> Controls:
    single = {k: v for k, v in pairs}
    summary = single.get("_summary")
    if summary not in (None, "true", "false", "count", "data", "text"):
        raise BadRequest(f"_summary '{summary}' is not true, false, count or data", code="value")
    if summary == "text":
        raise BadRequest("_summary=text is not supported", code="not-supported")
    total = single.get("_total", "none")
    if total not in ("none", "estimate", "accurate"):
        raise BadRequest(f"_total '{total}' is not none, estimate or accurate", code="value")
    count = _count(single.get("_count"), default_count, max_count)
    if count == 0:
        summary = "count"
    includes = tuple(
        _include(key, value)
        for key, raw in pairs
        if key in ("_include", "_include:iterate", "_revinclude", "_revinclude:iterate")
        for value in split_values(raw)
    )
    if len(includes) > max_includes:
        raise BadRequest(f"_include: at most {max_includes} includes", code="too-costly")
    elements = tuple(
        e.strip() for k, raw in pairs if k == "_elements" for e in raw.split(",") if e.strip()
    )
    sort = tuple(
        _sort_key(resource_type, v) for k, raw in pairs if k == "_sort" for v in raw.split(",")
    )
    return Controls(
        count=count,
        total=total != "none" or summary == "count",
        summary=None if summary == "false" else summary,
        elements=elements,
        sort=sort,
        includes=includes,
    )


def whole_number(name: str, raw: str, *, digits: int = 9) -> int:
    """A query parameter that must be a non-negative whole number: ASCII digits only, since
    ``int()`` also takes ``'²'``, Arabic-Indic digits and ``'1_0'``, and at most ``digits`` of
    them, so no value overflows a database integer."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > digits:
        raise BadRequest(f"{name} '{raw[:40]}' is not a whole number", code="value")
    return int(raw)


def _count(raw: str | None, default: int, maximum: int) -> int:
    return default if raw is None else min(whole_number("_count", raw), maximum)


def _sort_key(resource_type: str, value: str) -> SortKey:
    name = value.strip().removeprefix("-")
    if name not in SORTABLE or (name != "_lastUpdated" and parameter(resource_type, name) is None):
        raise BadRequest(f"_sort: '{name}' is not sortable on {resource_type}", code="value")
    return SortKey(name, value.strip().startswith("-"))


def _include(key: str, value: str) -> Include:
    reverse = key.startswith("_revinclude")
    iterate = key.endswith(":iterate")
    if value == "*":
        return Include("*", "*", None, reverse, iterate)
    parts = value.split(":")
    if len(parts) not in (2, 3) or parts[0] not in searchable_types():
        raise BadRequest(f"{key}: '{value}' is not Type:parameter[:Target]", code="value")
    source, name = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if source in JOURNALED_TYPES or target in JOURNALED_TYPES:
        raise BadRequest(
            f"{key}: AuditEvents are kept in the audit journal and cannot be included; "
            "search AuditEvent?patient=… or ?entity=… instead",
            code="not-supported",
        )
    definition = parameter(source, name)
    if name != "*" and (definition is None or definition.type != "reference"):
        raise BadRequest(f"{key}: {source} has no reference parameter '{name}'", code="value")
    if target is not None and (
        target not in SEARCH_PARAMETERS
        or (definition is not None and not definition.refers_to(target))
    ):
        raise BadRequest(f"{key}: '{value}' names a target it cannot refer to", code="value")
    return Include(source, name, target, reverse, iterate)


def include_values(resource_type: str) -> list[str]:
    """The ``_include`` values a search of ``resource_type`` supports (CapabilityStatement)."""
    if resource_type in JOURNALED_TYPES:
        return []
    names = [p.name for p in SEARCH_PARAMETERS.get(resource_type, ()) if p.type == "reference"]
    return ["*", *(f"{resource_type}:{n}" for n in names)] if names else []


def revinclude_values(resource_type: str) -> list[str]:
    """The ``_revinclude`` values that can reach ``resource_type``, from every registered type."""
    found = [
        f"{source}:{p.name}"
        for source, params in SEARCH_PARAMETERS.items()
        if source not in JOURNALED_TYPES
        for p in params
        if p.type == "reference" and p.refers_to(resource_type)
    ]
    return ["*", *found] if found else []
