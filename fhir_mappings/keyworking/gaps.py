"""Gap detection: every way a person can fall between the cracks, as DetectedIssue resources.

The instant checks (nobody accountable, several accountable, no key worker, key worker away
with no cover) come from the resolver, so ``$accountable`` and ``$accountability-gaps`` cannot
disagree. This module adds what looks ahead or across people: assignments ending within the
window with nobody following on, key workers over the caseload limit, overdue plan reviews and
plan activities nobody performs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhir_mappings.keyworking import moments
from fhir_mappings.keyworking.projection import Assignment, PlanRow, reference_json
from fhir_mappings.keyworking.resolver import Answer
from fhir_mappings.keyworking.terminology import (
    ACCOUNTABLE,
    ACTIVITY_NO_PERFORMER,
    CASELOAD_OVER_LIMIT,
    ENDING_NO_SUCCESSOR,
    GAPS,
    KEYWORKER,
    REVIEW_OVERDUE,
    ROLES,
    gap_coding,
)


@dataclass(frozen=True)
class Gap:
    patient: str
    code: str
    detail: str
    implicated: tuple[str, ...] = ()


@dataclass(frozen=True)
class Limits:
    at: int
    within_days: int
    caseload_limit: int


def _successor(row: Assignment, rows: Sequence[Assignment]) -> bool:
    """Whether someone else holds the same role when ``row`` ends."""
    assert row.end is not None
    return any(
        other is not row
        and other.team_active
        and other.role == row.role
        and moments.covers(other.start, other.end, row.end)
        for other in rows
    )


def detect(
    answer: Answer,
    assignments: Sequence[Assignment],
    plans: Sequence[PlanRow],
    caseloads: Mapping[str, int],
    limits: Limits,
) -> list[Gap]:
    """Every gap for one patient: ``answer`` is the resolver's view at ``limits.at``."""
    patient = answer.patient
    found = [Gap(patient, code, GAPS[code][1], _implicated_by(answer)) for code in answer.gaps]
    horizon = limits.at + limits.within_days * 86_400_000_000
    for row in assignments:
        if (
            row.role in (ACCOUNTABLE, KEYWORKER)
            and row.team_active
            and row.end is not None
            and moments.covers(row.start, row.end, limits.at)
            and row.end <= horizon
            and not _successor(row, assignments)
        ):
            found.append(
                Gap(
                    patient,
                    ENDING_NO_SUCCESSOR,
                    f"{ROLES[row.role][0]} {row.member_display or row.member} ends on "
                    f"{moments.day(row.end - 1)} and nobody follows on",
                    (f"CareTeam/{row.care_team}", row.member),
                )
            )
    for holder in answer.keyworkers:
        member = holder.assignment.member
        count = caseloads.get(member, 0)
        if holder.assignment.role == KEYWORKER and count > limits.caseload_limit:
            found.append(
                Gap(
                    patient,
                    CASELOAD_OVER_LIMIT,
                    f"Key worker {holder.display or member} is key worker for {count} people "
                    f"(limit {limits.caseload_limit})",
                    (member,),
                )
            )
    for plan in plans:
        if not plan.active:
            continue
        if plan.review_due is not None and plan.review_due < limits.at:
            found.append(
                Gap(
                    patient,
                    REVIEW_OVERDUE,
                    f"The plan review was due on {moments.day(plan.review_due)}",
                    (f"CarePlan/{plan.care_plan}",),
                )
            )
        for index in plan.unperformed:
            found.append(
                Gap(
                    patient,
                    ACTIVITY_NO_PERFORMER,
                    f"CarePlan.activity[{index}] has no performer",
                    (f"CarePlan/{plan.care_plan}",),
                )
            )
    return found


def _implicated_by(answer: Answer) -> tuple[str, ...]:
    holders = [h for h in (answer.accountable, *answer.keyworkers) if h is not None]
    teams = {f"CareTeam/{h.assignment.care_team}" for h in holders}
    members = [h.assignment.member for h in answer.keyworkers if h.absence]
    return (*sorted(teams), *members)


def detected_issue(gap: Gap, ident: str, at: int) -> dict[str, Any]:
    """A DetectedIssue (not stored: a report line) for one gap."""
    return {
        "resourceType": "DetectedIssue",
        "id": ident,
        "status": "preliminary",
        "code": {"coding": [gap_coding(gap.code)], "text": GAPS[gap.code][0]},
        "severity": GAPS[gap.code][2],
        "patient": reference_json(gap.patient),
        "identifiedDateTime": moments.instant(at),
        "implicated": [{"reference": ref} for ref in gap.implicated if "|" not in ref],
        "detail": gap.detail,
    }
