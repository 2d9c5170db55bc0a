"""The search table: (query, expected ids in order) over the fixed data set, on both databases.

Every parameter type, modifier, prefix, chain, ``_has``, OR/AND and ``_sort`` appears here; the
expectations are worked out by hand from ``test_search_seed.SEED`` and R4's rules
(https://hl7.org/fhir/R4/search.html). One test runs the whole table against one seeded
database and reports every mismatch at once.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.conftest import BASE
from tests.test_search_seed import GMC, LOINC, NHS, ODS, ROLE, SNOMED, V2, seed

CASES: list[tuple[str, list[str]]] = [
    # token: system|code, |code, system|, code, :not, :missing, :text, :of-type
    (f"Patient?identifier={NHS}|9434765919", ["pat-1"]),
    ("Patient?identifier=9434765870", ["pat-2"]),
    ("Patient?identifier=|9434765870", []),
    (f"Patient?identifier={NHS}|", ["pat-1", "pat-2"]),
    (f"Patient?identifier:of-type={V2}|MR|MRN-1", ["pat-1"]),
    (f"Patient?identifier:of-type={V2}|MR|MRN-2", []),
    (f"Patient?identifier:not={NHS}|9434765919", ["pat-2", "pat-3"]),
    ("Patient?identifier:missing=true", ["pat-3"]),
    ("Patient?identifier:text=hospital", ["pat-1"]),
    ("Patient?gender=male,other", ["pat-2", "pat-3"]),
    ("Patient?active=true", ["pat-1", "pat-2"]),
    ("Patient?active:not=true", ["pat-3"]),
    (f"Practitioner?identifier={GMC}|", ["pr-1", "pr-2"]),
    ("Practitioner?active:missing=true", ["pr-3"]),
    ("Organization?active=false", ["org-b"]),
    (f"PractitionerRole?role={ROLE}|keyworker", ["role-1"]),
    ("PractitionerRole?role:text=care coord", ["role-2"]),
    ("RelatedPerson?relationship=MTH", ["rp-1"]),
    ("CareTeam?status=active", ["ct-1", "ct-4", "ct-5"]),
    ("CareTeam?status:not=active", ["ct-2", "ct-3"]),
    ("CareTeam?status=inactive,proposed", ["ct-2", "ct-3"]),
    ("CareTeam?status=active&status=proposed", []),
    (f"CareTeam?category={LOINC}|LA27976-2", ["ct-1"]),
    ("CareTeam?category:text=social", ["ct-4"]),
    ("CareTeam?identifier=T-1", ["ct-1"]),
    (f"CareTeam?role={ROLE}|keyworker", ["ct-1", "ct-3"]),
    ("CareTeam?role=cover-keyworker", ["ct-4"]),
    (f"CarePlan?activity-code={SNOMED}|410155007", ["cp-1"]),
    ("CarePlan?intent=plan&status=active,draft", ["cp-1", "cp-3"]),
    # string: default starts-with (case and accent blind), :exact, :contains
    ("Patient?family=mul", ["pat-1", "pat-2"]),
    ("Patient?family=MULLER", ["pat-1"]),
    ("Patient?family:exact=Müller", ["pat-1"]),
    ("Patient?family:exact=müller", []),
    ("Patient?name:contains=brie", ["pat-3"]),
    ("Patient?given=zoe", ["pat-3"]),
    ("Patient?name=sam", ["pat-1"]),
    ("Patient?family=mul&given=jo", ["pat-2"]),
    ("Patient?family=smith,o", ["pat-3"]),
    ("Practitioner?name=sm", ["pr-1", "pr-2"]),
    ("Practitioner?given=ada", ["pr-3"]),
    ("Organization?name=riverside gp", ["org-a"]),
    ("Organization?name=ebene", ["org-c"]),
    ("Organization?name:contains=TOP", ["org-b"]),
    ("Organization?name:contains=%25", []),
    # date and period: prefixes and precision; periods by overlap
    ("Patient?birthdate=1950", ["pat-1"]),
    ("Patient?birthdate=lt1960", ["pat-1"]),
    ("Patient?birthdate=ge1988-11-30", ["pat-2", "pat-3"]),
    ("Patient?birthdate=2001-06", []),
    ("Patient?birthdate=ap1950-03-04", ["pat-1"]),
    ("Patient?birthdate=ne1950-03-04", ["pat-2", "pat-3"]),
    ("Patient?birthdate=sa1988", ["pat-3"]),
    ("Patient?birthdate=eb1988-11-30", ["pat-1"]),
    ("Patient?birthdate=gt2000&birthdate=le2001-12-31", ["pat-3"]),
    ("PractitionerRole?date=ge2025", ["role-2"]),
    ("PractitionerRole?date=le2024-06-01", ["role-1"]),
    ("CareTeam?date=2023", ["ct-2"]),
    ("CareTeam?date=ge2025-01-01", ["ct-1", "ct-4"]),
    ("CareTeam?date=lt2023-06-01", ["ct-2", "ct-5"]),
    ("CareTeam?date=2022-06-15", ["ct-5"]),
    ("CareTeam?date=2022-06-15T10:00:00%2B01:00", []),
    ("CareTeam?date:missing=true", ["ct-3"]),
    ("CarePlan?activity-date=2024-03", ["cp-1"]),
    ("CarePlan?date=ge2024", ["cp-1", "cp-2"]),
    ("CarePlan?_lastUpdated=gt2000", ["cp-1", "cp-2", "cp-3"]),
    ("CarePlan?_lastUpdated=lt2000", []),
    # reference: Type/id, id, absolute URL, typed, :identifier, :missing
    ("Patient?general-practitioner=Organization/org-a", ["pat-1"]),
    ("Patient?general-practitioner:Practitioner=pr-1", ["pat-2"]),
    ("Patient?general-practitioner:Organization=pr-1", []),
    ("Patient?general-practitioner=pr-1", ["pat-2"]),
    (f"Patient?organization={BASE}/Organization/org-b", ["pat-3"]),
    ("Patient?organization:missing=true", ["pat-2"]),
    ("Organization?partof=org-a", ["org-b"]),
    ("CareTeam?patient=pat-1", ["ct-1", "ct-3"]),
    ("CareTeam?subject=http://other.example/fhir/Patient/pat-1", []),
    (f"CareTeam?subject:identifier={NHS}|9434765870", ["ct-2", "ct-4"]),
    ("CareTeam?participant=Practitioner/pr-1", ["ct-1", "ct-2"]),
    ("CareTeam?participant:RelatedPerson=rp-1", ["ct-2"]),
    ("CareTeam?encounter:missing=false", []),
    ("CarePlan?care-team=ct-3", ["cp-3"]),
    ("CarePlan?performer=Practitioner/pr-1", ["cp-1"]),
    ("CarePlan?based-on=cp-1", ["cp-2"]),
    ("CarePlan?replaces=CarePlan/cp-1", ["cp-2"]),
    ("CarePlan?part-of=cp-1", ["cp-3"]),
    ("CarePlan?subject:Patient=pat-2", ["cp-2"]),
    # composite member$role: the same participant holds the role
    (f"CareTeam?participant-role=Practitioner/pr-3${ROLE}|accountable-professional", ["ct-1"]),
    ("CareTeam?participant-role=Practitioner/pr-1$co-keyworker", ["ct-2"]),
    ("CareTeam?participant-role=Practitioner/pr-3$keyworker", []),
    # chains, one level
    (f"CareTeam?subject.identifier={NHS}|9434765919", ["ct-1", "ct-3"]),
    ("CareTeam?subject:Patient.name=o'b", ["ct-5"]),
    ("CareTeam?participant:Practitioner.name=smy", ["ct-3", "ct-4"]),
    ("CareTeam?participant.active=true", ["ct-1", "ct-2"]),
    ("CarePlan?care-team.status=proposed", ["cp-3"]),
    ("Patient?general-practitioner:Organization.name=riverside", ["pat-1"]),
    (f"Organization?partof:Organization.identifier={ODS}|A81001", ["org-b"]),
    ("PractitionerRole?practitioner.name=smythe", ["role-2"]),
    (f"RelatedPerson?patient.identifier={NHS}|9434765919", ["rp-1"]),
    # _has, one level
    ("Patient?_has:CareTeam:subject:status=active", ["pat-1", "pat-3"]),
    ("Patient?_has:CareTeam:patient:participant=Practitioner/pr-2", ["pat-1"]),
    ("Patient?_has:CarePlan:subject:status=completed", ["pat-2"]),
    ("Practitioner?_has:PractitionerRole:practitioner:organization=org-a", ["pr-1"]),
    ("CareTeam?_has:CarePlan:care-team:status=draft", ["ct-1", "ct-3"]),
    # _id and _sort
    ("Patient?_id=pat-3,pat-1", ["pat-1", "pat-3"]),
    ("Patient?_sort=family", ["pat-1", "pat-2", "pat-3"]),
    ("Patient?_sort=-family", ["pat-3", "pat-2", "pat-1"]),
    ("Patient?_sort=-birthdate", ["pat-3", "pat-2", "pat-1"]),
    ("Practitioner?_sort=name", ["pr-3", "pr-1", "pr-2"]),
    ("CareTeam?_sort=date", ["ct-5", "ct-2", "ct-1", "ct-4", "ct-3"]),
    ("CareTeam?_sort=-date", ["ct-1", "ct-4", "ct-2", "ct-5", "ct-3"]),
    ("CareTeam?_sort=status,-date", ["ct-1", "ct-4", "ct-5", "ct-2", "ct-3"]),
    ("CarePlan?_sort=-_lastUpdated", ["cp-3", "cp-2", "cp-1"]),
]

# Malformed searches: always 400, naming the parameter, whatever Prefer says.
BAD: list[tuple[str, str]] = [
    ("Patient?birthdate=2020-13-45", "birthdate"),
    ("Patient?birthdate=xx2020", "birthdate"),
    ("CareTeam?date=zz2020-01-01", "date"),
    ("CareTeam?subject.name.family=x", "subject.name.family"),
    ("CareTeam?status.name=x", "status.name"),
    ("CareTeam?status:exact=active", "status:exact"),
    ("CareTeam?participant-role=Practitioner/pr-1", "participant-role"),
    ("Patient?identifier:of-type=MR|x", "identifier:of-type"),
    ("Patient?active:missing=maybe", "active:missing"),
    ("Patient?_has:CareTeam:subject:_has:CarePlan:subject:status=x", "_has:CareTeam"),
    ("Patient?_has:CareTeam:status:status=x", "_has:CareTeam:status"),
    ("Patient?family=", "family"),
    ("Patient?_sort=gender", "_sort"),
    ("Patient?_count=abc", "_count"),
    ("Patient?_total=lots", "_total"),
    ("Patient?_summary=maybe", "_summary"),
    ("CareTeam?_include=CareTeam:status", "_include"),
    ("CareTeam?_revinclude=Nothing:subject", "_revinclude"),
    ("Patient?_cursor=AAAA", "cursor"),
]


async def _ids(client: httpx.AsyncClient, query: str) -> list[str] | str:
    path, _, params = query.partition("?")
    encoded = "&".join(
        "=".join(quote(part, safe=":/$|,%'") for part in pair.split("=", 1))
        for pair in params.split("&")
    )
    response = await client.get(f"/{path}?{encoded}")
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    entries = response.json().get("entry", [])
    return [e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"]


async def test_the_search_table(client: httpx.AsyncClient) -> None:
    assert len(CASES) >= 60
    await seed(client)
    wrong = []
    for query, expected in CASES:
        found = await _ids(client, query)
        if found != expected:
            wrong.append(f"{query}: expected {expected}, got {found}")
    assert not wrong, "\n".join(wrong)


async def test_the_same_table_through_post_search(client: httpx.AsyncClient) -> None:
    await seed(client)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for query, expected in CASES[::7]:
        path, _, params = query.partition("?")
        body = "&".join(
            "=".join(quote(p, safe="") for p in pair.split("=", 1)) for pair in params.split("&")
        )
        response = await client.post(f"/{path}/_search", content=body, headers=form)
        assert response.status_code == 200, (query, response.text)
        entries = response.json().get("entry", [])
        assert [e["resource"]["id"] for e in entries] == expected, query


@pytest.mark.parametrize("strict", [False, True])
async def test_malformed_searches_are_400_naming_the_parameter(
    client: httpx.AsyncClient, strict: bool
) -> None:
    headers = {"Prefer": "handling=strict"} if strict else {}
    for query, name in BAD:
        path, _, params = query.partition("?")
        response = await client.get(f"/{path}?{params.replace('+', '%2B')}", headers=headers)
        assert response.status_code == 400, (query, response.status_code, response.text)
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert name in outcome["issue"][0]["diagnostics"], (query, outcome)
