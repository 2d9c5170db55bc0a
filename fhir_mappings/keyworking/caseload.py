"""Caseloads: how many people each professional holds each keyworking role for, now.

A team manager balances load with this, and the gaps report flags key workers over the limit.
Assignments to a Practitioner count for that practitioner's role in the organisation asked
about (through ``Roles``), so a caseload does not depend on how a CareTeam named the member.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fhir_mappings.keyworking import moments
from fhir_mappings.keyworking.projection import Assignment, Role, reference_json
from fhir_mappings.keyworking.resolver import Roles, current
from fhir_mappings.keyworking.terminology import ROLES, role_concept


@dataclass(frozen=True)
class Caseload:
    role: Role
    counts: dict[str, int]  # keyworking role -> number of distinct people
    absence: tuple[int | None, int | None, str] | None


def caseloads(
    organization_roles: Sequence[Role], assignments: Iterable[Assignment], roles: Roles, at: int
) -> list[Caseload]:
    """One caseload per role of the organisation, counting the people each role serves."""
    people: dict[str, set[tuple[str, str]]] = {r.reference: set() for r in organization_roles}
    for row in current(assignments, at):
        holder = roles.holder(row, at)
        if holder.role is not None and holder.role.reference in people:
            people[holder.role.reference].add((row.role, row.patient))
    return [
        Caseload(
            role,
            dict(sorted(Counter(kind for kind, _ in people[role.reference]).items())),
            role.absence(at),
        )
        for role in organization_roles
    ]


def parameters(organization: str, loads: Sequence[Caseload], at: int) -> dict[str, Any]:
    """The ``$caseload`` answer: one ``caseload`` parameter per practitioner role."""
    entries = []
    for load in loads:
        parts: list[dict[str, Any]] = [
            {
                "name": "practitionerRole",
                "valueReference": reference_json(load.role.reference, load.role.display),
            },
        ]
        if load.role.practitioner:
            parts.append(
                {"name": "practitioner", "valueReference": {"reference": load.role.practitioner}}
            )
        for code in ROLES:
            parts.append(
                {
                    "name": "count",
                    "part": [
                        {"name": "role", "valueCodeableConcept": role_concept(code)},
                        {"name": "people", "valueInteger": load.counts.get(code, 0)},
                    ],
                }
            )
        parts.append({"name": "total", "valueInteger": sum(load.counts.values())})
        parts.append({"name": "onLeave", "valueBoolean": load.absence is not None})
        if load.absence is not None:
            start, end, description = load.absence
            leave: dict[str, Any] = {"name": "leave", "valueString": description}
            parts.append(leave)
            if start is not None or end is not None:
                parts.append(
                    {"name": "leavePeriod", "valuePeriod": moments.period_json(start, end)}
                )
        entries.append({"name": "caseload", "part": parts})
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "organization", "valueReference": {"reference": organization}},
            {"name": "date", "valueDateTime": moments.instant(at)},
            *entries,
        ],
    }
