"""The pure keyworking domain (``fhir_mappings.keyworking``): no database, no HTTP."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from fhir_mappings.demo import demo_resources
from fhir_mappings.keyworking import (
    answer,
    caseload,
    gaps,
    handover,
    moments,
    nhs_number,
    projection,
    resolver,
    rules,
    terminology,
)
from fhir_mappings.keyworking.projection import Assignment, Role

DAY = 86_400_000_000
T0 = moments.bounds("2026-03-01")[0]


def _row(
    role: str, member: str, start: str | None = "2025-01-01", end: str | None = None, **kw: Any
) -> Assignment:
    values: dict[str, Any] = {
        "patient": "Patient/p",
        "role": role,
        "member": member,
        "care_team": "ct",
        "participant": 0,
        "start": moments.bounds(start)[0] if start else None,
        "end": moments.bounds(end)[1] if end else None,
    }
    return Assignment(**(values | kw))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9434765919", True),
        ("943 476 5919", True),
        ("9434765918", False),
        ("123", False),
        ("1000000010", False),
    ],
)
def test_nhs_number_modulus_11(value: str, expected: bool) -> None:
    # 1000000010 has a check digit of 10: never issued.
    assert nhs_number.valid(value) is expected


def test_every_demo_nhs_number_is_valid() -> None:
    numbers = [
        i["value"]
        for r in demo_resources(datetime.date(2026, 1, 1))
        for i in r.get("identifier", [])
        if i["system"] == nhs_number.NHS_NUMBER
    ]
    assert len(numbers) == 12 and all(nhs_number.valid(n) for n in numbers)


def test_snomed_mapping_is_data_and_professions_carry_no_duty() -> None:
    def concept(code: str) -> list[dict[str, Any]]:
        return [{"coding": [{"system": terminology.SNOMED, "code": code}]}]

    for code in ("768820003", "768832004", "405623001"):
        assert terminology.role_of(concept(code)) == "keyworker"
    for code in ("62247001", "106328005", "80546007", "158997000", "224540001"):
        assert code in terminology.SNOMED_ROLES
        assert terminology.role_of(concept(code)) is None
    both = [*concept("768820003"), terminology.role_concept("cover-keyworker")]
    assert terminology.role_of(both) == "cover-keyworker"  # the project's code wins


def test_periods_are_half_open_and_dates_cover_whole_days() -> None:
    start, end = moments.period_bounds({"start": "2026-01-01", "end": "2026-01-31"})
    assert start == moments.bounds("2026-01-01")[0]
    assert end == moments.bounds("2026-02-01")[0]
    assert moments.period_json(start, end) == {"start": "2026-01-01", "end": "2026-01-31"}
    assert moments.bounds("2026")[1] == moments.bounds("2027-01-01")[0]
    assert moments.bounds("2026-02")[1] == moments.bounds("2026-03-01")[0]
    assert moments.overlap((start, end), (end, None)) is False
    assert moments.overlap((start, end), (end - 1, None)) is True
    with pytest.raises(ValueError):
        moments.bounds("soon")


def test_projection_of_a_care_team() -> None:
    team = {
        "status": "active",
        "subject": {"identifier": {"system": nhs_number.NHS_NUMBER, "value": "9434765919"}},
        "period": {"start": "2025-01-01", "end": "2027-01-01"},
        "participant": [
            {
                "role": [terminology.role_concept("keyworker")],
                "member": {"reference": "PractitionerRole/r", "display": "R"},
            },
            {"member": {"reference": "http://test/fhir/Practitioner/p/_history/2"}},
            {"role": [terminology.role_concept("keyworker")]},
        ],
    }
    rows = projection.care_team("ct", team)
    assert [(r.patient, r.role, r.member, r.member_display) for r in rows] == [
        (f"{nhs_number.NHS_NUMBER}|9434765919", "keyworker", "PractitionerRole/r", "R"),
        (f"{nhs_number.NHS_NUMBER}|9434765919", "case-team-member", "Practitioner/p", None),
    ]
    assert rows[0].end == moments.bounds("2027-01-01")[1]  # inherits the team's period
    assert projection.care_team("ct", {**team, "subject": {"reference": "Group/g"}}) == []


def test_practitioner_role_leave_and_end() -> None:
    role = projection.practitioner_role(
        "r",
        {
            "active": True,
            "period": {"end": "2026-12-31"},
            "notAvailable": [
                {
                    "description": "Sick leave",
                    "during": {"start": "2026-03-01", "end": "2026-03-10"},
                }
            ],
        },
    )
    assert role.absence(T0) == (T0, moments.bounds("2026-03-11")[0], "Sick leave")
    assert role.absence(T0 + 20 * DAY) is None
    assert role.absence(moments.bounds("2027-01-01")[0])[2] == "role ended"  # type: ignore[index]
    assert projection.practitioner_role("x", {"active": False}).absence(T0) == (
        None,
        None,
        "role inactive",
    )


def test_care_plan_review_and_unperformed_activities() -> None:
    plan = projection.care_plan(
        "cp",
        {
            "status": "active",
            "subject": {"reference": "Patient/p"},
            "activity": [
                {
                    "detail": {
                        "status": "scheduled",
                        "code": {"text": "Plan review"},
                        "scheduledPeriod": {"start": "2026-02-01"},
                        "performer": [{"reference": "Practitioner/x"}],
                    }
                },
                {
                    "detail": {
                        "status": "completed",
                        "code": {"text": "Old review"},
                        "scheduledPeriod": {"start": "2025-02-01"},
                    }
                },
                {"detail": {"status": "not-started", "code": {"text": "Book dentist"}}},
            ],
        },
    )
    assert plan == projection.PlanRow(
        "cp", "Patient/p", True, moments.bounds("2026-02-01")[0], (2,)
    )


def test_rules_collect_every_issue_with_its_expression() -> None:
    team = {
        "period": {"start": "2025-01-01", "end": "2024-01-01"},
        "participant": [
            {"role": [{"coding": [{"system": terminology.ROLE_SYSTEM, "code": "boss"}]}]}
        ],
    }
    issues = rules.care_team_issues(team)
    assert [(i.diagnostics.split(":")[0], i.expression) for i in issues] == [
        ("Rule period-order", ("CareTeam.period.end",)),
        ("Rule participant-role", ("CareTeam.participant[0].role",)),
    ]


def test_accountable_rule_counts_only_active_overlapping_rows() -> None:
    mine = [_row("accountable-professional", "PractitionerRole/a", "2026-01-01")]
    earlier = _row(
        "accountable-professional", "PractitionerRole/b", "2024-01-01", "2025-12-31", care_team="x"
    )
    inactive = _row(
        "accountable-professional", "PractitionerRole/c", team_active=False, care_team="y"
    )
    assert rules.accountable_issues(mine, [earlier, inactive]) == []
    clash = _row("accountable-professional", "PractitionerRole/d", "2025-06-01", care_team="z")
    (issue,) = rules.accountable_issues(mine, [clash])
    assert "CareTeam/z" in issue.diagnostics and issue.expression == ("CareTeam.participant[0]",)


def _roles(*roles: Role) -> resolver.Roles:
    return resolver.Roles(roles)


def test_resolver_prefers_key_worker_then_cover_then_accountable() -> None:
    rows = [
        _row("accountable-professional", "PractitionerRole/gp", member_display="Dr G"),
        _row("keyworker", "PractitionerRole/kw", member_display="K"),
        _row("cover-keyworker", "PractitionerRole/cv", "2026-02-01", "2026-04-01"),
    ]
    leave = (moments.bounds("2026-02-01")[0], moments.bounds("2026-03-31")[1], "Leave")
    roles = _roles(
        Role("PractitionerRole/kw", leave=(leave,)),
        Role("PractitionerRole/gp"),
        Role("PractitionerRole/cv"),
    )
    during = resolver.resolve("Patient/p", rows, roles, T0)
    assert during.contact is not None and during.contact.assignment.member == "PractitionerRole/cv"
    assert during.reason == "key worker K Leave until 2026-03-31; cover key worker"
    after = resolver.resolve("Patient/p", rows, roles, T0 + 40 * DAY)
    assert after.contact is not None and after.contact.assignment.member == "PractitionerRole/kw"
    before = resolver.resolve("Patient/p", rows, roles, moments.bounds("2024-01-01")[0])
    assert before.contact is None and before.gaps == ("no-accountable-professional", "no-keyworker")
    uncovered = resolver.resolve("Patient/p", rows[:2], roles, T0)
    assert (
        uncovered.contact is not None
        and uncovered.contact.assignment.member == "PractitionerRole/gp"
    )
    assert uncovered.gaps == ("keyworker-unavailable-no-cover",)
    cover_only = resolver.resolve("Patient/p", [rows[0], rows[2]], roles, T0)
    assert cover_only.reason == "no key worker; cover key worker"
    params = answer.parameters(uncovered, "Jo")
    assert [p["name"] for p in params["parameter"]] == [
        "patient",
        "accountable",
        "keyworker",
        "contact",
        "gap",
    ]


def test_practitioner_members_resolve_through_the_role_in_their_organisation() -> None:
    row = _row("keyworker", "Practitioner/x", organization="Organization/b")
    roles = _roles(
        Role("PractitionerRole/a", practitioner="Practitioner/x", organization="Organization/a"),
        Role(
            "PractitionerRole/b",
            practitioner="Practitioner/x",
            organization="Organization/b",
            active=False,
        ),
    )
    holder = roles.holder(row, T0)
    assert holder.role is not None and holder.role.reference == "PractitionerRole/b"
    assert holder.absence == (None, None, "role inactive")


def test_gaps_look_ahead_and_across_people() -> None:
    ending = _row("keyworker", "PractitionerRole/kw", end="2026-03-10")
    rows = [_row("accountable-professional", "PractitionerRole/gp"), ending]
    roles = _roles(Role("PractitionerRole/kw"), Role("PractitionerRole/gp"))
    result = resolver.resolve("Patient/p", rows, roles, T0)
    plans = [projection.PlanRow("cp", "Patient/p", True, T0 - DAY, (1,))]
    found = gaps.detect(result, rows, plans, {"PractitionerRole/kw": 3}, gaps.Limits(T0, 14, 2))
    assert [g.code for g in found] == [
        "assignment-ending-no-successor",
        "caseload-over-limit",
        "plan-review-overdue",
        "plan-activity-no-performer",
    ]
    successor = _row("keyworker", "PractitionerRole/kw2", start="2026-03-11")
    with_successor = gaps.detect(result, [*rows, successor], [], {}, gaps.Limits(T0, 14, 25))
    assert with_successor == []
    issue = gaps.detected_issue(found[0], "id-1", T0)
    assert issue["code"]["coding"][0]["system"] == terminology.GAP_SYSTEM
    assert issue["implicated"] == [
        {"reference": "CareTeam/ct"},
        {"reference": "PractitionerRole/kw"},
    ]


def test_caseload_counts_distinct_people_per_role() -> None:
    rows = [
        _row("keyworker", "PractitionerRole/kw"),
        _row("keyworker", "PractitionerRole/kw", patient="Patient/q"),
        _row("cover-keyworker", "Practitioner/x", patient="Patient/q"),
        _row("keyworker", "PractitionerRole/kw", end="2025-06-01", patient="Patient/r"),
    ]
    own = [Role("PractitionerRole/kw"), Role("PractitionerRole/x", practitioner="Practitioner/x")]
    loads = caseload.caseloads(own, rows, resolver.Roles(own), T0)
    assert [(c.role.reference, c.counts) for c in loads] == [
        ("PractitionerRole/kw", {"keyworker": 2}),
        ("PractitionerRole/x", {"cover-keyworker": 1}),
    ]


def test_handover_ends_the_old_and_starts_the_new_participant() -> None:
    team = {
        "resourceType": "CareTeam",
        "meta": {"versionId": "3"},
        "period": {"start": "2025-01-01"},
        "participant": [
            {
                "role": [terminology.role_concept("keyworker")],
                "member": {"reference": "PractitionerRole/a"},
                "period": {"start": "2025-01-01", "end": "2027-01-01"},
            }
        ],
    }
    request = handover.parse(
        {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "role",
                    "valueCoding": {"system": terminology.ROLE_SYSTEM, "code": "keyworker"},
                },
                {"name": "from", "valueReference": {"reference": "PractitionerRole/a"}},
                {"name": "to", "valueReference": {"reference": "PractitionerRole/b"}},
                {"name": "date", "valueDateTime": "2026-06-01T09:00:00Z"},
            ],
        }
    )
    updated = handover.apply(team, request)
    assert "meta" not in updated and team["participant"][0]["period"]["end"] == "2027-01-01"
    assert [p["period"] for p in updated["participant"]] == [
        {"start": "2025-01-01", "end": "2026-05-31"},
        {"start": "2026-06-01", "end": "2027-01-01"},
    ]
    with pytest.raises(handover.HandoverRefused):
        handover.apply(
            team,
            handover.Handover(
                "keyworker",
                "PractitionerRole/b",
                "PractitionerRole/c",
                datetime.date(2026, 6, 1),
                None,
            ),
        )
    with pytest.raises(handover.BadHandover):
        handover.parse(
            {"resourceType": "Parameters", "parameter": [{"name": "role", "valueCode": "boss"}]}
        )
