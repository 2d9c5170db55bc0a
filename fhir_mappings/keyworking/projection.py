"""CareTeam, PractitionerRole, Patient and CarePlan JSON → the plain rows the operations read.

The projection is what makes ``$accountable`` and the gaps report cheap: who holds which
keyworking role for which patient over which period is extracted once, on write, instead of
scanning CareTeams on every question. Each function here is pure; the service stores the rows.

A patient is keyed by its local reference (``Patient/123``) or, when a CareTeam names the
person only by identifier, by ``system|value``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fhir_mappings.keyworking import moments
from fhir_mappings.keyworking.terminology import CASE_TEAM, role_of

ACTIVE_STATUSES = ("active",)
_UNFINISHED = ("not-started", "scheduled", "in-progress", "on-hold")


class Assignment(NamedTuple):
    """One participant of one CareTeam: ``member`` holds ``role`` for ``patient`` in a period.

    A named tuple rather than a frozen dataclass, as ``Role`` is: ``$accountable`` builds a
    dozen of these a request and the gaps report one per participant of the population, and
    a frozen dataclass's ``__init__`` (a guarded attribute set per field) cost 2.6 us to the
    tuple's 0.4.
    """

    patient: str
    role: str
    member: str
    care_team: str
    participant: int  # its place in CareTeam.participant
    start: int | None = None
    end: int | None = None
    team_active: bool = True
    member_display: str | None = None
    organization: str | None = None
    role_concepts: tuple[Mapping[str, Any], ...] = ()


class Role(NamedTuple):
    """What a PractitionerRole (or a Practitioner, through its roles) tells about availability."""

    reference: str
    active: bool = True
    practitioner: str | None = None
    organization: str | None = None
    display: str | None = None
    organization_display: str | None = None
    telecom: tuple[Mapping[str, Any], ...] = ()
    leave: tuple[tuple[int | None, int | None, str], ...] = ()  # (start, end, description)

    def absence(self, at: int) -> tuple[int | None, int | None, str] | None:
        """The leave covering ``at`` — or an open-ended absence when the role is inactive."""
        if not self.active:
            return (None, None, "role inactive")
        for start, end, description in self.leave:
            if moments.covers(start, end, at):
                return (start, end, description)
        return None


@dataclass(frozen=True)
class PatientRow:
    reference: str
    identifiers: tuple[str, ...] = ()  # "system|value"
    display: str | None = None
    organization: str | None = None  # managingOrganization, else the first GP organisation


@dataclass(frozen=True)
class PlanRow:
    care_plan: str
    patient: str
    active: bool
    review_due: int | None = None  # the earliest unfinished review activity's start
    unperformed: tuple[int, ...] = field(default_factory=tuple)  # activity indexes


def reference(value: Any) -> str | None:
    """``Type/id`` of a local relative or absolute reference, else None (a malformed one,
    such as ``Patient/``, included: projections may be taken before references are checked).
    """
    if not isinstance(value, Mapping):
        return None
    ref = value.get("reference")
    if not isinstance(ref, str) or ref.startswith("#") or "/" not in ref:
        return None
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        return None
    return f"{parts[-2]}/{parts[-1]}"


def reference_json(key: str, display: str | None = None) -> dict[str, Any]:
    """A Reference for a projected key: ``Type/id`` literally, ``system|value`` as identifier."""
    out: dict[str, Any]
    if "|" in key:
        system, _, value = key.partition("|")
        out = {"identifier": {"system": system, "value": value}}
    else:
        out = {"reference": key}
    if display:
        out["display"] = display
    return out


def identifier_key(identifier: Any) -> str | None:
    if isinstance(identifier, Mapping) and identifier.get("system") and identifier.get("value"):
        return f"{identifier['system']}|{identifier['value']}"
    return None


def patient_key(subject: Any) -> str | None:
    """The key a CareTeam's or CarePlan's subject is projected under; None for a Group."""
    local = reference(subject)
    if local is not None:
        return local if local.startswith("Patient/") else None
    if isinstance(subject, Mapping) and subject.get("type", "Patient") == "Patient":
        return identifier_key(subject.get("identifier"))
    return None


def _display(value: Any) -> str | None:
    shown = value.get("display") if isinstance(value, Mapping) else None
    return shown if isinstance(shown, str) else None


def care_team(care_team_id: str, body: Mapping[str, Any]) -> list[Assignment]:
    """One row per participant with a member (roles without a duty become case-team members)."""
    patient = patient_key(body.get("subject"))
    if patient is None:
        return []
    active = body.get("status") in ACTIVE_STATUSES
    team_start, team_end = moments.period_bounds(body.get("period"))
    rows = []
    for index, participant in enumerate(body.get("participant") or ()):
        member_ref = participant.get("member")
        member = reference(member_ref) or identifier_key((member_ref or {}).get("identifier"))
        if member is None:
            continue
        concepts = tuple(participant.get("role") or ())
        start, end = moments.period_bounds(participant.get("period"))
        rows.append(
            Assignment(
                patient=patient,
                role=role_of(concepts) or CASE_TEAM,
                member=member,
                care_team=care_team_id,
                participant=index,
                start=start if start is not None else team_start,
                end=end if end is not None else team_end,
                team_active=active,
                member_display=_display(member_ref),
                organization=reference(participant.get("onBehalfOf")),
                role_concepts=concepts,
            )
        )
    return rows


def practitioner_role(role_id: str, body: Mapping[str, Any]) -> Role:
    start, end = moments.period_bounds(body.get("period"))
    leave = []
    for absence in body.get("notAvailable") or ():
        during = absence.get("during")
        if during:
            leave.append((*moments.period_bounds(during), str(absence.get("description", ""))))
    if end is not None:  # the role ends: from then on it is an open-ended absence
        leave.append((end, None, "role ended"))
    if start is not None:
        leave.append((None, start, "role not yet started"))
    organization = body.get("organization")
    return Role(
        reference=f"PractitionerRole/{role_id}",
        active=body.get("active", True) is not False,
        practitioner=reference(body.get("practitioner")),
        organization=reference(organization),
        display=_display(body.get("practitioner")),
        organization_display=_display(organization),
        telecom=tuple(body.get("telecom") or ()),
        leave=tuple(leave),
    )


def patient(patient_id: str, body: Mapping[str, Any]) -> PatientRow:
    identifiers = tuple(
        key for key in (identifier_key(i) for i in body.get("identifier") or ()) if key
    )
    names = body.get("name") or ()
    display = None
    if names:
        name = names[0]
        display = name.get("text") or " ".join([*name.get("given", ()), name.get("family", "")])
    organization = reference(body.get("managingOrganization"))
    if organization is None:
        gps = [reference(gp) for gp in body.get("generalPractitioner") or ()]
        organization = next((gp for gp in gps if gp and gp.startswith("Organization/")), None)
    return PatientRow(
        f"Patient/{patient_id}", identifiers, (display or "").strip() or None, organization
    )


def _is_review(detail: Mapping[str, Any]) -> bool:
    code = detail.get("code") or {}
    words = [code.get("text") or ""] + [c.get("display") or "" for c in code.get("coding") or ()]
    return any("review" in w.lower() for w in words)


def care_plan(care_plan_id: str, body: Mapping[str, Any]) -> PlanRow | None:
    """A plan's review date (the earliest unfinished review activity) and unperformed work."""
    subject = patient_key(body.get("subject"))
    if subject is None:
        return None
    due: list[int] = []
    unperformed = []
    for index, activity in enumerate(body.get("activity") or ()):
        detail = activity.get("detail")
        if not isinstance(detail, Mapping) or detail.get("status") not in _UNFINISHED:
            continue
        if not detail.get("performer"):
            unperformed.append(index)
        start = (detail.get("scheduledPeriod") or {}).get("start")
        if _is_review(detail) and isinstance(start, str):
            due.append(moments.bounds(start)[0])
    return PlanRow(
        care_plan=care_plan_id,
        patient=subject,
        active=body.get("status") == "active",
        review_due=min(due) if due else None,
        unperformed=tuple(unperformed),
    )
