"""SMART on FHIR scopes, v1 and v2, parsed into grants.

* v1: ``patient/CareTeam.read``, ``user/*.write``, ``system/*.*`` —
  https://hl7.org/fhir/smart-app-launch/1.0.0/scopes-and-launch-context.html
* v2: ``system/CareTeam.rs``, ``patient/CarePlan.cruds`` and query restrictions such as
  ``patient/CareTeam.rs?category=http://loinc.org|LA28865-6`` —
  https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html

A grant is (resource type or ``*``, action) with the criteria a record must meet; scopes the
server does not understand (``openid``, ``launch``, ``fhirUser``) grant nothing. A query
restriction's values are split once, here, as FHIR search splits a comma-separated value;
from then on each criterion carries its values as a tuple that nothing splits again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from service.search.criteria import split_values

# v2 permission letters -> the actions of ``service.auth.access.ACTIONS``
_V2 = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_V1 = {
    "read": ("read", "search"),
    "write": ("create", "update", "delete"),
    "*": ("read", "search", "create", "update", "delete"),
}
_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)"
    r"\.(?P<permissions>read|write|\*|c?r?u?d?s?)(?:\?(?P<query>.+))?$"
)

# (parameter, the values one of which must match), ANDed
Criteria = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Scope:
    context: str  # patient | user | system
    resource_type: str  # a type or "*"
    actions: tuple[str, ...]
    criteria: Criteria  # v2 query restriction pairs; empty when none


def parse_scope(text: str) -> Scope | None:
    """One scope, or None when it is not a SMART resource scope (or grants nothing)."""
    match = _SCOPE.match(text)
    if match is None:
        return None
    permissions = match.group("permissions")
    if permissions in _V1:
        if match.group("query"):
            return None  # v1 scopes have no query restrictions
        actions = _V1[permissions]
    elif permissions:
        actions = tuple(_V2[letter] for letter in permissions)
    else:
        return None
    pairs = parse_qsl(match.group("query") or "", keep_blank_values=False)
    criteria = tuple(sorted((name, tuple(split_values(value))) for name, value in pairs))
    return Scope(match.group("context"), match.group("type"), actions, criteria)


def parse_scopes(text: str) -> list[Scope]:
    return [scope for item in text.split() if (scope := parse_scope(item)) is not None]
