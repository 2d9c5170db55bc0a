"""OperationDefinitions for the keyworking operations, as data.

They are served at ``OperationDefinition/{id}`` and named by the CapabilityStatement, so a
client can discover each operation's parameters from the server itself.
https://hl7.org/fhir/R4/operationdefinition.html
"""

from __future__ import annotations

from typing import Any

from fhir_mappings.keyworking.terminology import CANONICAL

# (name, use, min, max, type, documentation[, parts])
_Param = tuple[Any, ...]

_PERSON_PARTS: list[_Param] = [
    ("member", "out", 1, "1", "Reference", "The professional, with display"),
    ("role", "out", 1, "1", "CodeableConcept", "Keyworking role (and the profession sent)"),
    ("careTeam", "out", 1, "1", "Reference", "The CareTeam that records it"),
    ("period", "out", 0, "1", "Period", "When the role is held"),
    ("organization", "out", 0, "1", "Reference", "On behalf of which organisation"),
    ("telecom", "out", 0, "*", "ContactPoint", "How to contact them"),
    ("absence", "out", 0, "1", "string", "Leave or inactivity at the instant asked about"),
]


def _parameter(spec: _Param) -> dict[str, Any]:
    name, use, low, high, kind, doc, *rest = spec
    out: dict[str, Any] = {"name": name, "use": use, "min": low, "max": high, "documentation": doc}
    if rest:
        out["part"] = [_parameter(p) for p in rest[0]]
    elif kind:
        out["type"] = kind
    return out


def _definition(
    ident: str,
    code: str,
    title: str,
    description: str,
    *,
    resource: str | None,
    instance: bool,
    affects_state: bool,
    parameters: list[_Param],
) -> dict[str, Any]:
    return {
        "resourceType": "OperationDefinition",
        "id": ident,
        "url": f"{CANONICAL}/OperationDefinition/{ident}",
        "name": title.replace(" ", ""),
        "title": title,
        "status": "active",
        "kind": "operation",
        "publisher": "Keyworker FHIR",
        "description": description,
        "affectsState": affects_state,
        "code": code,
        "resource": [resource] if resource else [],
        "system": resource is None,
        "type": resource is not None and not instance,
        "instance": instance,
        "parameter": [_parameter(p) for p in parameters],
    }


ACCOUNTABLE = _definition(
    "CareTeam-accountable",
    "accountable",
    "Who is accountable",
    "Who is accountable for a person, who their key workers are and whom to contact now or at "
    "another instant: the key worker if available, else active cover, else the accountable "
    "professional, with the reason.",
    resource="CareTeam",
    instance=False,
    affects_state=False,
    parameters=[
        ("patient", "in", 1, "1", "string", "Patient/id, id, or system|value"),
        ("date", "in", 0, "1", "dateTime", "The instant to answer for (default now)"),
        ("patient", "out", 1, "1", "Reference", "The patient"),
        ("accountable", "out", 0, "1", None, "The accountable professional", _PERSON_PARTS),
        ("keyworker", "out", 0, "*", None, "Key and co-key workers", _PERSON_PARTS),
        (
            "contact",
            "out",
            0,
            "1",
            None,
            "Whom to contact",
            [*_PERSON_PARTS, ("reason", "out", 1, "1", "string", "Why this person")],
        ),
        ("gap", "out", 0, "*", "Coding", "Keyworking gaps at the instant"),
    ],
)

HANDOVER = _definition(
    "CareTeam-handover",
    "handover",
    "Hand over a role",
    "Hand a keyworking role from one member to another at a date in one new CareTeam version, "
    "with a Provenance giving the reason. 409 if 'from' does not hold the role then.",
    resource="CareTeam",
    instance=True,
    affects_state=True,
    parameters=[
        ("role", "in", 1, "1", "Coding", "The keyworking role (or its code)"),
        ("from", "in", 1, "1", "Reference", "Who holds it now"),
        ("to", "in", 1, "1", "Reference", "Who takes it on"),
        ("date", "in", 1, "1", "date", "The first day the new member holds it"),
        ("reason", "in", 0, "1", "string", "Why (recorded in the Provenance)"),
        ("return", "out", 1, "1", "CareTeam", "The new CareTeam version"),
    ],
)

GAPS = _definition(
    "accountability-gaps",
    "accountability-gaps",
    "Accountability gaps",
    "Every person at risk of falling between the cracks, as DetectedIssue resources (not "
    "stored), paged like a search.",
    resource=None,
    instance=False,
    affects_state=False,
    parameters=[
        ("organization", "in", 0, "1", "string", "Only people this organisation serves"),
        ("within", "in", 0, "1", "integer", "Days ahead for assignments ending"),
        ("_count", "in", 0, "1", "integer", "Page size"),
        ("return", "out", 1, "1", "Bundle", "A searchset of DetectedIssue"),
    ],
)

CASELOAD = _definition(
    "Organization-caseload",
    "caseload",
    "Caseload",
    "Per practitioner role of the organisation: how many people it holds each keyworking role "
    "for, and whether it is on leave now.",
    resource="Organization",
    instance=True,
    affects_state=False,
    parameters=[
        ("organization", "out", 1, "1", "Reference", "The organisation"),
        (
            "caseload",
            "out",
            0,
            "*",
            None,
            "One per practitioner role",
            [
                ("practitionerRole", "out", 1, "1", "Reference", "The role"),
                (
                    "count",
                    "out",
                    0,
                    "*",
                    None,
                    "People per keyworking role",
                    [
                        ("role", "out", 1, "1", "CodeableConcept", "Keyworking role"),
                        ("people", "out", 1, "1", "integer", "How many people"),
                    ],
                ),
                ("total", "out", 1, "1", "integer", "People in all roles"),
                ("onLeave", "out", 1, "1", "boolean", "On leave (or inactive) now"),
            ],
        ),
    ],
)

IMPORT_ASSIGNMENTS = _definition(
    "import-assignments",
    "import-assignments",
    "Import keyworking assignments",
    "Create or update Patients, Practitioners, PractitionerRoles, Organizations and CareTeams "
    "from a CSV file (text/csv), one row per assignment, in one transaction. A file with any "
    "bad row writes nothing (422 naming every bad line) unless skipBadRows=true.",
    resource=None,
    instance=False,
    affects_state=True,
    parameters=[
        ("skipBadRows", "in", 0, "1", "boolean", "Import the good rows of a file with bad ones"),
        ("return", "out", 1, "1", "OperationOutcome", "What was created, updated or skipped"),
    ],
)
