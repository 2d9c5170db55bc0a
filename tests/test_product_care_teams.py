"""The CareTeams the product makes itself keep R4's invariants, with each organisation where R4
allows it, and the keyworking answers still name every member's organisation.

The demo data, the CSV import and the benchmark population used to put ``onBehalfOf`` on
PractitionerRole members, which ``ctm-1`` forbids: a PractitionerRole names its organisation
itself, and the team's organisation is ``CareTeam.managingOrganization``.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.generate import Config, Population
from fhir_mappings import invariants
from fhir_mappings.demo import demo_resources
from service.assignment_import import import_assignments
from service.demo_loader import load_demo
from tests.conftest import settings_for
from tests.keyworking_world import accountable, parts

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "assignments.csv"
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def _broken(resources: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (str(r.get("id", r["resourceType"])), issue.diagnostics.split(":")[0])
        for r in resources
        for issue in invariants.check(r["resourceType"], r)
    ]


def test_the_demo_data_keeps_every_r4_invariant() -> None:
    resources = demo_resources(datetime.date.today())
    assert _broken(resources) == []
    teams = [r for r in resources if r["resourceType"] == "CareTeam"]
    assert teams and all(t["managingOrganization"] for t in teams)
    assert not [p for t in teams for p in t["participant"] if "onBehalfOf" in p]


def test_the_benchmark_population_keeps_every_r4_invariant() -> None:
    population = Population(Config(300, 7, datetime.date(2026, 1, 15)))
    resources = [e["resource"] for b in population.batches() for e in b.bundle["entry"]]
    assert _broken(resources) == []
    teams = [r for r in resources if r["resourceType"] == "CareTeam"]
    assert len(teams) == 300
    assert all(len(t["managingOrganization"]) == 1 for t in teams)


async def _organization_of(client: httpx.AsyncClient, member: str) -> str:
    role = await client.get(f"/{member}")
    assert role.status_code == 200, role.text
    return str(role.json()["organization"]["reference"])


async def test_the_demo_answers_name_each_members_organisation(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await load_demo(settings_for(database_url))
    resources = demo_resources(datetime.date.today())
    checked = 0
    for patient in (r["id"] for r in resources if r["resourceType"] == "Patient"):
        answer = await accountable(client, f"Patient/{patient}")
        for holder in parts(answer, "accountable") + parts(answer, "keyworker"):
            member = holder["member"]["reference"]
            if member.startswith("PractitionerRole/"):
                organization = await _organization_of(client, member)
                assert holder["organization"]["reference"] == organization, (patient, member)
                checked += 1
    assert checked > 12

    # The gaps and caseloads of an organisation still find its people through its roles.
    roles = [r for r in resources if r["resourceType"] == "PractitionerRole"]
    teams = [r for r in resources if r["resourceType"] == "CareTeam"]
    reported: set[str] = set()
    totals: list[int] = []
    for organization in {r["organization"]["reference"] for r in roles}:
        own = {
            f"PractitionerRole/{r['id']}"
            for r in roles
            if r["organization"]["reference"] == organization
        }
        served = {
            t["subject"]["reference"]
            for t in teams
            if any(p["member"]["reference"] in own for p in t["participant"])
        }
        caseload = (await client.get(f"/{organization}/$caseload")).json()
        counted = {
            p["valueReference"]["reference"]
            for c in caseload["parameter"]
            if c["name"] == "caseload"
            for p in c["part"]
            if p["name"] == "practitionerRole"
        }
        assert counted == own
        totals += [
            p["valueInteger"]
            for c in caseload["parameter"]
            if c["name"] == "caseload"
            for p in c["part"]
            if p["name"] == "total"
        ]
        gaps = await client.get(
            "/$accountability-gaps", params={"organization": organization, "_count": "1000"}
        )
        assert gaps.status_code == 200, gaps.text
        people = {e["resource"]["patient"]["reference"] for e in gaps.json().get("entry", [])}
        assert people <= served, organization
        reported |= people
    assert sum(totals) > 12  # people counted through the roles, not onBehalfOf
    assert reported  # the demo's gaps (no key worker, leave without cover...) are found


async def test_imported_care_teams_name_their_organisations_where_r4_allows(
    client: httpx.AsyncClient, app_state: Any
) -> None:
    report = await import_assignments(
        app_state.interactions,
        SAMPLE.read_text(encoding="utf-8"),
        skip_bad_rows=False,
        max_entries=5000,
    )
    assert report.rows == 8
    found = (await client.get(f"/CareTeam?subject:identifier={NHS}|9990002002")).json()
    team = found["entry"][0]["resource"]
    assert not [p for p in team["participant"] if "onBehalfOf" in p]
    members = [p["member"]["reference"] for p in team["participant"]]
    organizations = [await _organization_of(client, m) for m in members]
    assert [o["reference"] for o in team["managingOrganization"]] == list(
        dict.fromkeys(organizations)
    )
    answer = await accountable(client, f"{NHS}|9990002002")
    holders = parts(answer, "accountable") + parts(answer, "keyworker")
    assert len(holders) == 2
    for holder in holders:
        member = holder["member"]["reference"]
        assert holder["organization"]["reference"] == await _organization_of(client, member)
