"""The ``$accountable`` answer as a FHIR ``Parameters`` resource.

Top-level parameters: ``patient``, ``accountable`` (0..1), ``keyworker`` (0..*, key and co-key
workers), ``contact`` (0..1, with ``reason``) and ``gap`` (0..*). Each person has the parts
``member``, ``role``, ``careTeam``, ``period``, ``organization`` (when known) and ``telecom``
(0..*) — exactly what the GP contract says a patient must be told — plus ``absence`` when the
professional cannot act at the instant asked about.
"""

from __future__ import annotations

from typing import Any

from fhir_mappings.keyworking import moments
from fhir_mappings.keyworking.projection import reference_json
from fhir_mappings.keyworking.resolver import Answer, Holder, absence_note
from fhir_mappings.keyworking.terminology import ROLE_SYSTEM, gap_coding, role_concept


def _role(holder: Holder) -> dict[str, Any]:
    """The keyworking role, with the other codings the writer sent (e.g. the profession)."""
    concept = role_concept(holder.assignment.role)
    for original in holder.assignment.role_concepts:
        for coding in original.get("coding") or ():
            if coding.get("system") != ROLE_SYSTEM:
                concept["coding"].append(dict(coding))
    return concept


def _parts(holder: Holder) -> list[dict[str, Any]]:
    row = holder.assignment
    parts: list[dict[str, Any]] = [
        {"name": "member", "valueReference": reference_json(row.member, holder.display)},
        {"name": "role", "valueCodeableConcept": _role(holder)},
        {"name": "careTeam", "valueReference": {"reference": f"CareTeam/{row.care_team}"}},
    ]
    period = moments.period_json(row.start, row.end)
    if period:
        parts.append({"name": "period", "valuePeriod": period})
    organization = holder.organization
    if organization is not None:
        shown = None
        if holder.role is not None and holder.role.organization == organization:
            shown = holder.role.organization_display
        parts.append(
            {"name": "organization", "valueReference": reference_json(organization, shown)}
        )
    for point in holder.role.telecom if holder.role is not None else ():
        parts.append({"name": "telecom", "valueContactPoint": dict(point)})
    note = absence_note(holder)
    if note is not None:
        parts.append({"name": "absence", "valueString": note})
    return parts


def parameters(answer: Answer, patient_display: str | None = None) -> dict[str, Any]:
    out: list[dict[str, Any]] = [
        {"name": "patient", "valueReference": reference_json(answer.patient, patient_display)}
    ]
    if answer.accountable is not None:
        out.append({"name": "accountable", "part": _parts(answer.accountable)})
    out += [{"name": "keyworker", "part": _parts(k)} for k in answer.keyworkers]
    if answer.contact is not None:
        reason = {"name": "reason", "valueString": answer.reason or ""}
        out.append({"name": "contact", "part": [*_parts(answer.contact), reason]})
    out += [{"name": "gap", "valueCoding": gap_coding(code)} for code in answer.gaps]
    return {"resourceType": "Parameters", "parameter": out}
