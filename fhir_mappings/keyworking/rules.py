"""The keyworking rules that hold on every write, as pure checks returning every issue found.

Each issue's diagnostics start with the rule's name and its expression names the element, so
a refused write's OperationOutcome says both what was broken and where:

* ``participant-role`` — a coding of the keyworking-role CodeSystem is one of its codes. Any
  other role (a profession, another system's local code) or none at all is kept as sent and
  makes a plain team member with no duty, as R4 leaves ``participant.role`` open;
* ``period-order`` — a period ends after it starts;
* ``participant-period`` — a participant's period lies within its CareTeam's period;
* ``nhs-number-check`` — NHS numbers pass modulus 11 (``nhs_number``);
* ``single-accountable`` — at most one accountable professional per patient at any instant,
  across the patient's active CareTeams.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fhir_mappings.issues import Issue
from fhir_mappings.keyworking import moments, nhs_number
from fhir_mappings.keyworking.projection import Assignment
from fhir_mappings.keyworking.terminology import ACCOUNTABLE, ROLE_SYSTEM, ROLES


def _role_issues(index: int, concepts: Sequence[Mapping[str, Any]]) -> list[Issue]:
    """Codings that claim the keyworking-role CodeSystem with a code it does not define: a
    duty misspelt would otherwise pass silently as no duty at all."""
    return [
        Issue(
            f"Rule participant-role: {c.get('code')!r} is not a keyworking-role code",
            code="code-invalid",
            expression=(f"CareTeam.participant[{index}].role",),
        )
        for concept in concepts
        for c in concept.get("coding") or ()
        if c.get("system") == ROLE_SYSTEM and c.get("code") not in ROLES
    ]


def _period(period: Any, expression: str) -> tuple[tuple[int | None, int | None], list[Issue]]:
    start, end = moments.period_bounds(period)
    if start is not None and end is not None and end <= start:
        return (start, end), [
            Issue(
                "Rule period-order: the period must end after it starts",
                code="business-rule",
                expression=(f"{expression}.end",),
            )
        ]
    return (start, end), []


def care_team_issues(body: Mapping[str, Any]) -> list[Issue]:
    """Everything wrong with one CareTeam on its own (the accountable rule needs the others).

    A participant without a period (or an open end) holds the role for the CareTeam's period.
    """
    team, issues = _period(body.get("period"), "CareTeam.period")
    issues += nhs_number.reference_identifiers(body, "CareTeam")
    for index, participant in enumerate(body.get("participant") or ()):
        issues += _role_issues(index, participant.get("role") or ())
        path = f"CareTeam.participant[{index}].period"
        (start, end), found = _period(participant.get("period"), path)
        issues += found
        if (team[0] is not None and start is not None and start < team[0]) or (
            team[1] is not None and end is not None and end > team[1]
        ):
            issues.append(
                Issue(
                    "Rule participant-period: a participant's period must lie within the "
                    "CareTeam's period",
                    code="business-rule",
                    expression=(path,),
                )
            )
    return issues


def accountable_issues(new: Iterable[Assignment], others: Iterable[Assignment]) -> list[Issue]:
    """Overlaps of accountable professionals: within the new rows and against other teams'."""
    mine = [a for a in new if a.role == ACCOUNTABLE and a.team_active]
    theirs = [a for a in others if a.role == ACCOUNTABLE and a.team_active]
    issues = []
    for position, row in enumerate(mine):
        rivals = mine[:position] + theirs
        clash = next(
            (r for r in rivals if moments.overlap((row.start, row.end), (r.start, r.end))), None
        )
        if clash is not None:
            where = (
                "this CareTeam"
                if clash.care_team == row.care_team
                else f"CareTeam/{clash.care_team}"
            )
            issues.append(
                Issue(
                    f"Rule single-accountable: {row.patient} would have two accountable "
                    f"professionals at once ({row.member} and {clash.member} in {where})",
                    code="business-rule",
                    expression=(f"CareTeam.participant[{row.participant}]",),
                )
            )
    return issues
