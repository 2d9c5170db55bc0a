"""``_summary`` and ``_elements``: the one place search parses returned resources, to send
only the elements asked for, marked with the ``SUBSETTED`` tag as R4 requires.

The summary elements are R4's "Σ" flags for the types this server holds.
https://hl7.org/fhir/R4/search.html#summary and #elements
"""

from __future__ import annotations

from typing import Any

import orjson

_ALWAYS = ("resourceType", "id", "meta", "implicitRules")
_SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
SUMMARY_ELEMENTS: dict[str, list[str]] = {
    "CareTeam": [
        "identifier",
        "status",
        "category",
        "name",
        "subject",
        "encounter",
        "period",
        "participant",
        "managingOrganization",
    ],
    "CarePlan": [
        "identifier",
        "instantiatesCanonical",
        "instantiatesUri",
        "basedOn",
        "replaces",
        "partOf",
        "status",
        "intent",
        "category",
        "title",
        "description",
        "subject",
        "encounter",
        "period",
        "created",
        "author",
    ],
    "Patient": [
        "identifier",
        "active",
        "name",
        "telecom",
        "gender",
        "birthDate",
        "deceasedBoolean",
        "deceasedDateTime",
        "address",
        "managingOrganization",
        "link",
    ],
    "Practitioner": ["identifier", "active", "name", "telecom", "address", "gender", "birthDate"],
    "PractitionerRole": [
        "identifier",
        "active",
        "period",
        "practitioner",
        "organization",
        "code",
        "specialty",
        "location",
        "healthcareService",
        "telecom",
    ],
    "Organization": ["identifier", "active", "type", "name", "partOf"],
    "RelatedPerson": [
        "identifier",
        "active",
        "patient",
        "relationship",
        "name",
        "telecom",
        "gender",
        "birthDate",
        "address",
    ],
}


# The top-level elements R4 makes mandatory (min 1), which ``_summary=text`` keeps.
MANDATORY_ELEMENTS: dict[str, list[str]] = {
    "CarePlan": ["status", "intent", "subject"],
    "RelatedPerson": ["patient"],
    "Provenance": ["target", "recorded", "agent"],
    "AuditEvent": ["type", "recorded", "agent", "source"],
}


def _wanted(resource_type: str, summary: str | None, elements: tuple[str, ...]) -> set[str]:
    if summary == "true":
        return set(SUMMARY_ELEMENTS.get(resource_type, ()))
    if summary == "text":
        return {"text", *MANDATORY_ELEMENTS.get(resource_type, ())}
    return set(elements)


def project(content: bytes, summary: str | None, elements: tuple[str, ...]) -> bytes:
    """The stored bytes unchanged, or the subset ``_summary``/``_elements`` asks for."""
    if summary not in ("true", "data", "text") and not elements:
        return content
    body: dict[str, Any] = orjson.loads(content)
    if summary == "data":
        body.pop("text", None)
        kept = body
    else:
        wanted = _wanted(body.get("resourceType", ""), summary, elements)
        kept = {k: v for k, v in body.items() if k in _ALWAYS or k in wanted}
    meta = dict(kept.get("meta", {}))
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    kept["meta"] = meta
    return orjson.dumps(kept)
