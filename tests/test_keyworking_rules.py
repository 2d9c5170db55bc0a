"""The keyworking rules on write: 422 naming the rule and the element, and nothing written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from service.db.tables import kw_assignment, kw_patient, kw_role
from tests.keyworking_world import (
    NHS,
    ROLE,
    build,
    care_team,
    ok,
    participant,
    put,
)


async def _projection(database_url: str) -> dict[str, int]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return {
                t.name: int(await connection.scalar(select(func.count()).select_from(t)) or 0)
                for t in (kw_assignment, kw_role, kw_patient)
            }
    finally:
        await engine.dispose()


async def _refused(
    client: httpx.AsyncClient,
    db_state: Callable[[], Awaitable[dict[str, int]]],
    database_url: str,
    body: dict[str, Any],
    rid: str,
) -> list[dict[str, Any]]:
    before = (await db_state(), await _projection(database_url))
    response = await put(client, body, rid)
    assert response.status_code == 422, response.text
    assert (await db_state(), await _projection(database_url)) == before
    issues: list[dict[str, Any]] = response.json()["issue"]
    return issues


_ACCOUNTABLE = participant("accountable-professional", "PractitionerRole/r-gp")
_LATE = "2026-01-01T23:00:00-05:00"  # 04:00 on 2 January in UTC: after the whole of 1 January

CASES = {
    # An end day before the start day breaks R4's per-1 first (test_invariants); R4 compares
    # a dateTime and a date at the day they share, this rule the instants they name.
    "period-order": (
        care_team([participant("keyworker", "PractitionerRole/r-kw", _LATE, "2026-01-01")]),
        "CareTeam.participant[0].period.end",
    ),
    "participant-period": (
        care_team([participant("keyworker", "PractitionerRole/r-kw", "2024-01-01")]),
        "CareTeam.participant[0].period",
    ),
    "participant-role": (
        care_team(
            [
                {
                    "role": [{"coding": [{"system": ROLE, "code": "boss"}]}],
                    "member": {"reference": "PractitionerRole/r-kw"},
                }
            ]
        ),
        "CareTeam.participant[0].role",
    ),
    "nhs-number-check": (
        care_team([_ACCOUNTABLE], f"{NHS}|9990000019"),
        "CareTeam.subject.identifier",
    ),
    # deep in the resource, with the name quoting an identifier object as text before it
    "nhs-number-check nested": (
        care_team(
            [
                _ACCOUNTABLE,
                {
                    "role": participant("keyworker", "PractitionerRole/r-kw")["role"],
                    "member": {"identifier": {"system": NHS, "value": "9990000019"}},
                },
            ],
            name='a team whose name quotes {"identifier":{"system":"x"}}',
        ),
        "CareTeam.participant[1].member.identifier",
    ),
    "single-accountable": (
        care_team(
            [_ACCOUNTABLE, participant("accountable-professional", "PractitionerRole/r-gp2")]
        ),
        "CareTeam.participant[1]",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_broken_rule_refuses_the_write_whole(
    client: httpx.AsyncClient,
    db_state: Callable[[], Awaitable[dict[str, int]]],
    database_url: str,
    case: str,
) -> None:
    await build(client)
    body, expression = CASES[case]
    issues = await _refused(client, db_state, database_url, body, "ct")
    assert issues[0]["diagnostics"].startswith(f"Rule {case.split()[0]}:")
    assert issues[0]["expression"] == [expression]


async def test_every_problem_is_reported_at_once(
    client: httpx.AsyncClient,
    db_state: Callable[[], Awaitable[dict[str, int]]],
    database_url: str,
) -> None:
    await build(client)
    body = care_team(
        [
            participant("keyworker", "PractitionerRole/r-kw", "2024-01-01"),
            participant("co-keyworker", "PractitionerRole/r-kw2", _LATE, "2026-01-01"),
        ],
        f"{NHS}|1234567890",
    )
    issues = await _refused(client, db_state, database_url, body, "ct")
    rules = sorted(i["diagnostics"].split(":")[0] for i in issues)
    assert rules == ["Rule nhs-number-check", "Rule participant-period", "Rule period-order"]


async def test_a_second_care_team_cannot_add_an_overlapping_accountable(
    client: httpx.AsyncClient,
    db_state: Callable[[], Awaitable[dict[str, int]]],
    database_url: str,
) -> None:
    await build(client)
    await ok(client, care_team([_ACCOUNTABLE]), "ct-health")
    other = care_team([participant("accountable-professional", "PractitionerRole/r-gp2")])
    issues = await _refused(client, db_state, database_url, other, "ct-social")
    assert "CareTeam/ct-health" in issues[0]["diagnostics"]
    # The same person named by NHS number is the same person.
    by_number = care_team(
        [participant("accountable-professional", "PractitionerRole/r-gp2")],
        f"{NHS}|9990000018",
    )
    await _refused(client, db_state, database_url, by_number, "ct-other-system")
    # Handing over in sequence is fine, and so is an inactive team.
    sequence = care_team(
        [
            participant(
                "accountable-professional", "PractitionerRole/r-gp2", "2024-01-01", "2024-12-31"
            )
        ],
        period={"start": "2024-01-01"},
    )
    await ok(client, sequence, "ct-earlier")
    await ok(client, {**other, "status": "inactive"}, "ct-social")


async def test_patients_with_an_invalid_nhs_number_are_refused(
    client: httpx.AsyncClient,
    db_state: Callable[[], Awaitable[dict[str, int]]],
    database_url: str,
) -> None:
    await build(client)
    patient = {"resourceType": "Patient", "identifier": [{"system": NHS, "value": "9990000019"}]}
    issues = await _refused(client, db_state, database_url, patient, "pat-2")
    assert issues[0]["expression"] == ["Patient.identifier[0]"]


async def test_deleting_a_care_team_removes_its_rows(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await build(client)
    await ok(client, care_team([_ACCOUNTABLE]), "ct")
    assert (await _projection(database_url))["kw_assignment"] == 1
    assert (await client.delete("/CareTeam/ct")).status_code in (200, 204)
    assert (await _projection(database_url))["kw_assignment"] == 0
