"""The project's keyworking vocabulary: roles, gap kinds, and the SNOMED CT mapping.

SNOMED CT has no concept for "key worker" or "named accountable professional", and UK Core
leaves ``CareTeam.participant.role`` unbound, so the duties are carried by the project's own
CodeSystem. Codes other systems send instead (care coordinator, case manager, assigned
practitioner) are mapped by a table in ``fhir_mappings/data`` rather than by code, so the
mapping can be reviewed and extended without touching logic.

Every canonical URL hangs off one base, ``CANONICAL``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

CANONICAL = "https://keyworker-fhir.org/fhir"
ROLE_SYSTEM = f"{CANONICAL}/CodeSystem/keyworking-role"
GAP_SYSTEM = f"{CANONICAL}/CodeSystem/keyworking-gap"
SNOMED = "http://snomed.info/sct"

ACCOUNTABLE = "accountable-professional"
KEYWORKER = "keyworker"
CO_KEYWORKER = "co-keyworker"
COVER = "cover-keyworker"
CASE_TEAM = "case-team-member"

# code -> (display, definition)
ROLES: dict[str, tuple[str, str]] = {
    ACCOUNTABLE: (
        "Accountable professional",
        "The one named professional accountable for the person's care (for a GP practice, the "
        "named accountable GP of the GMS contract).",
    ),
    KEYWORKER: (
        "Key worker",
        "Makes sure the person's needs and wishes are met: keeps the plan up to date, books and "
        "follows up appointments, advocates, and is the point of contact.",
    ),
    CO_KEYWORKER: ("Co-key worker", "Shares the key worker's duties for the same person."),
    COVER: (
        "Cover key worker",
        "Acts as key worker while the key worker is unavailable (leave, sickness, vacancy).",
    ),
    CASE_TEAM: ("Case team member", "A member of the team around the person, without a duty."),
}

NO_ACCOUNTABLE = "no-accountable-professional"
NO_KEYWORKER = "no-keyworker"
MANY_ACCOUNTABLE = "multiple-accountable-professionals"
UNCOVERED_LEAVE = "keyworker-unavailable-no-cover"
ENDING_NO_SUCCESSOR = "assignment-ending-no-successor"
CASELOAD_OVER_LIMIT = "caseload-over-limit"
REVIEW_OVERDUE = "plan-review-overdue"
ACTIVITY_NO_PERFORMER = "plan-activity-no-performer"

# code -> (display, definition, DetectedIssue.severity)
GAPS: dict[str, tuple[str, str, str]] = {
    NO_ACCOUNTABLE: (
        "No accountable professional",
        "Nobody is accountable for the person.",
        "high",
    ),
    NO_KEYWORKER: ("No key worker", "The person has no key worker.", "moderate"),
    MANY_ACCOUNTABLE: (
        "More than one accountable professional",
        "Two or more professionals are accountable for the person at the same time.",
        "high",
    ),
    UNCOVERED_LEAVE: (
        "Key worker unavailable with no cover",
        "The key worker is on leave or inactive and no cover key worker is active.",
        "high",
    ),
    ENDING_NO_SUCCESSOR: (
        "Assignment ending with no successor",
        "An accountable professional or key worker assignment ends soon and nobody follows on.",
        "moderate",
    ),
    CASELOAD_OVER_LIMIT: (
        "Key worker caseload over the limit",
        "The person's key worker is key worker for more people than the configured limit.",
        "moderate",
    ),
    REVIEW_OVERDUE: (
        "Plan review overdue",
        "A review activity of an active CarePlan was due before now and is not done.",
        "moderate",
    ),
    ACTIVITY_NO_PERFORMER: (
        "Plan activity with no performer",
        "An unfinished activity of an active CarePlan has nobody to perform it.",
        "low",
    ),
}


def _load_snomed_map() -> dict[str, tuple[str, str | None]]:
    path = resources.files("fhir_mappings").joinpath("data/snomed-keyworking-roles.json")
    table = json.loads(path.read_text(encoding="utf-8"))
    return {c["code"]: (c["display"], c["maps_to"]) for c in table["concepts"]}


# SNOMED CT code -> (display, keyworking role or None for a profession)
SNOMED_ROLES: Mapping[str, tuple[str, str | None]] = _load_snomed_map()


def role_of(concepts: Iterable[Mapping[str, Any]]) -> str | None:
    """The keyworking role a participant's ``role`` CodeableConcepts carry, if any.

    A project coding wins over a mapped SNOMED CT one, so a system that sends both ("key worker"
    plus "care coordinator") is read as it meant.
    """
    mapped = None
    for concept in concepts:
        for coding in concept.get("coding") or ():
            system, code = coding.get("system"), coding.get("code")
            if system == ROLE_SYSTEM and code in ROLES:
                return str(code)
            if system == SNOMED and mapped is None and code in SNOMED_ROLES:
                mapped = SNOMED_ROLES[code][1]
    return mapped


def role_concept(code: str) -> dict[str, Any]:
    display = ROLES[code][0]
    return {"coding": [{"system": ROLE_SYSTEM, "code": code, "display": display}], "text": display}


def gap_coding(code: str) -> dict[str, str]:
    return {"system": GAP_SYSTEM, "code": code, "display": GAPS[code][0]}


def _code_system(
    ident: str, name: str, title: str, description: str, concepts: dict[str, Any]
) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": ident,
        "url": f"{CANONICAL}/CodeSystem/{ident}",
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": "Keyworker FHIR",
        "description": description,
        "caseSensitive": True,
        "valueSet": f"{CANONICAL}/ValueSet/{ident}",
        "content": "complete",
        "count": len(concepts),
        "concept": [
            {"code": code, "display": value[0], "definition": value[1]}
            for code, value in concepts.items()
        ],
    }


def _value_set(ident: str, name: str, title: str, includes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "id": ident,
        "url": f"{CANONICAL}/ValueSet/{ident}",
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": "Keyworker FHIR",
        "compose": {"include": includes},
    }


def code_systems() -> list[dict[str, Any]]:
    return [
        _code_system(
            "keyworking-role",
            "KeyworkingRole",
            "Keyworking roles",
            "Who holds which keyworking duty for a person (CareTeam.participant.role).",
            ROLES,
        ),
        _code_system(
            "keyworking-gap",
            "KeyworkingGap",
            "Keyworking gaps",
            "Ways a person can fall between the cracks ($accountability-gaps, $accountable).",
            GAPS,
        ),
    ]


def value_sets() -> list[dict[str, Any]]:
    """The role value set admits the project codes and the mapped SNOMED CT codes."""
    mapped = [
        {"code": code, "display": display}
        for code, (display, role) in SNOMED_ROLES.items()
        if role is not None
    ]
    return [
        _value_set(
            "keyworking-role",
            "KeyworkingRole",
            "Keyworking roles",
            [{"system": ROLE_SYSTEM}, {"system": SNOMED, "concept": mapped}],
        ),
        _value_set("keyworking-gap", "KeyworkingGap", "Keyworking gaps", [{"system": GAP_SYSTEM}]),
    ]
