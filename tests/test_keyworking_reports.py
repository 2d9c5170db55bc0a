"""``$accountability-gaps`` and ``Organization/$caseload`` over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from fhir_mappings.keyworking.moments import bounds
from service.db.tables import kw_assignment
from service.keyworking import answers
from tests.keyworking_world import build, bundle_pages, care_team, ok, participant

TODAY = datetime.date.today()


def _days(n: int) -> str:
    return (TODAY + datetime.timedelta(days=n)).isoformat()


def _plan(patient: str, review: int, performer: str | None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "kind": "Appointment",
        "code": {"text": "Annual personal plan review"},
        "status": "scheduled",
        "scheduledPeriod": {"start": _days(review)},
    }
    if performer:
        detail["performer"] = [{"reference": performer}]
    return {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": patient},
        "activity": [{"detail": detail}],
    }


async def _legacy_second_accountable(database_url: str) -> None:
    """Data from before the rule existed: written straight into the projection."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(kw_assignment),
                [
                    {
                        "care_team": team,
                        "idx": 0,
                        "patient": "Patient/pat-5",
                        "role": "accountable-professional",
                        "member": member,
                        "starts": bounds("2025-01-01")[0],
                        "ends": None,
                        "team_active": True,
                        "role_concepts": orjson.dumps([]),
                    }
                    for team, member in (
                        ("legacy-a", "PractitionerRole/r-gp"),
                        ("legacy-b", "PractitionerRole/r-gp2"),
                    )
                ],
            )
    finally:
        await engine.dispose()


async def _world(client: httpx.AsyncClient, database_url: str) -> None:
    await build(client, leave={"r-cover": {"start": _days(-5), "end": _days(50)}})
    for n in range(2, 7):
        await ok(client, {"resourceType": "Patient", "name": [{"family": f"P{n}"}]}, f"pat-{n}")
    gp, gp2 = "PractitionerRole/r-gp", "PractitionerRole/r-gp2"
    kw, kw2, cover = "PractitionerRole/r-kw", "PractitionerRole/r-kw2", "PractitionerRole/r-cover"
    # pat-1 is well covered: accountable GP, available key worker, plan in order.
    await ok(
        client,
        care_team([participant("accountable-professional", gp), participant("keyworker", kw)]),
        "ct-1",
    )
    await ok(client, _plan("Patient/pat-1", 30, kw), "cp-1")
    # pat-2: nobody accountable; key worker leaving within the window, nobody following on.
    await ok(
        client,
        care_team([participant("keyworker", kw2, "2025-01-01", _days(7))], "Patient/pat-2"),
        "ct-2",
    )
    # pat-3: no key worker; plan review overdue and an activity nobody performs.
    await ok(
        client, care_team([participant("accountable-professional", gp2)], "Patient/pat-3"), "ct-3"
    )
    await ok(client, _plan("Patient/pat-3", -3, None), "cp-3")
    # pat-4: the key worker is on leave and nobody covers.
    await ok(
        client,
        care_team(
            [participant("accountable-professional", gp), participant("keyworker", cover)],
            "Patient/pat-4",
        ),
        "ct-4",
    )
    # pat-5: two accountable professionals (legacy); pat-6 makes kw2's caseload 2.
    await _legacy_second_accountable(database_url)
    await ok(
        client,
        care_team(
            [
                participant("accountable-professional", gp2, "2020-01-01", "2024-12-31"),
                participant("keyworker", kw2),
            ],
            "Patient/pat-6",
            period={"start": "2020-01-01"},
        ),
        "ct-6",
    )


async def _all_pages(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    found = await bundle_pages(client, url)
    assert all(page["type"] == "searchset" for page in found)
    return [e["resource"] for page in found for e in page.get("entry", [])]


async def test_every_gap_kind_is_detected_and_none_for_the_well_covered(
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await app_factory(caseload_limit=1)
    await _world(client, database_url)
    issues = await _all_pages(client, "/$accountability-gaps?within=14")
    found = {(i["patient"]["reference"], i["code"]["coding"][0]["code"]) for i in issues}
    assert found == {
        ("Patient/pat-2", "no-accountable-professional"),
        ("Patient/pat-2", "assignment-ending-no-successor"),
        ("Patient/pat-2", "caseload-over-limit"),
        ("Patient/pat-3", "no-keyworker"),
        ("Patient/pat-3", "plan-review-overdue"),
        ("Patient/pat-3", "plan-activity-no-performer"),
        ("Patient/pat-4", "keyworker-unavailable-no-cover"),
        ("Patient/pat-5", "multiple-accountable-professionals"),
        ("Patient/pat-5", "no-keyworker"),
        ("Patient/pat-6", "no-accountable-professional"),
        ("Patient/pat-6", "caseload-over-limit"),
    }
    issue = next(
        i for i in issues if i["code"]["coding"][0]["code"] == "keyworker-unavailable-no-cover"
    )
    assert issue["resourceType"] == "DetectedIssue"
    assert issue["severity"] == "high"
    assert {"reference": "CareTeam/ct-4"} in issue["implicated"]
    # Paging gives the same issues, a page at a time.
    paged = await _all_pages(client, "/$accountability-gaps?within=14&_count=2")
    assert [i["id"] for i in paged] == [i["id"] for i in issues]
    monkeypatch.setattr(answers, "_CHUNK", 2)  # people read two at a time: same report
    chunked = await _all_pages(client, "/$accountability-gaps?within=14&_count=3")
    assert [i["id"] for i in chunked] == [i["id"] for i in issues]
    # A narrower window no longer sees pat-2's assignment ending.
    narrow = await _all_pages(client, "/$accountability-gaps?within=3")
    assert "assignment-ending-no-successor" not in {i["code"]["coding"][0]["code"] for i in narrow}


async def test_gaps_filter_by_organization(client: httpx.AsyncClient, database_url: str) -> None:
    await _world(client, database_url)
    issues = await _all_pages(client, "/$accountability-gaps?organization=Organization/org-gp")
    patients = {i["patient"]["reference"] for i in issues}
    assert patients == {"Patient/pat-3", "Patient/pat-4", "Patient/pat-5", "Patient/pat-6"}
    assert (await client.get("/$accountability-gaps?within=soon")).status_code == 400
    assert (await client.get("/$accountability-gaps?_cursor=forged")).status_code == 400


async def test_caseload_counts_people_per_role_and_leave(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _world(client, database_url)
    response = await client.get("/Organization/org-sc/$caseload")
    assert response.status_code == 200
    loads = {}
    for entry in response.json()["parameter"][2:]:
        parts = {p["name"]: p for p in entry["part"]}
        counts = {
            c["part"][0]["valueCodeableConcept"]["coding"][0]["code"]: c["part"][1]["valueInteger"]
            for c in entry["part"]
            if c["name"] == "count"
        }
        loads[parts["practitionerRole"]["valueReference"]["reference"]] = (
            counts["keyworker"],
            parts["total"]["valueInteger"],
            parts["onLeave"]["valueBoolean"],
        )
    assert loads == {
        "PractitionerRole/r-cover": (1, 1, True),
        "PractitionerRole/r-kw": (1, 1, False),
        "PractitionerRole/r-kw2": (2, 2, False),
    }
    gp = await client.get("/Organization/org-gp/$caseload")
    accountable = [
        c["part"][1]["valueInteger"]
        for e in gp.json()["parameter"][2:]
        for c in e["part"]
        if c["name"] == "count"
        and c["part"][0]["valueCodeableConcept"]["coding"][0]["code"] == "accountable-professional"
    ]
    assert sorted(accountable) == [2, 3]  # r-gp2: pat-3 and legacy pat-5; r-gp: 1, 4, 5
    assert (await client.get("/Organization/none/$caseload")).status_code == 404
