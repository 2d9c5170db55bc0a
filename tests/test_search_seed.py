"""The fixed data set the search tests run over, and a check that it loads as it should.

Ids are chosen (PUT creates them), and resources are written in this order, so the default
search order (creation order) is known. Dates are fixed, never "today", so every expected
result is stable. The set exercises every parameter type: identifiers with and without
types, names with accents, periods open at either end, identifier-only references, a
composite member$role, chains through every reference kind and reverse references.
"""

from __future__ import annotations

from typing import Any

import httpx

FHIR = {"Content-Type": "application/fhir+json"}
NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
GMC = "https://fhir.hl7.org.uk/Id/gmc-number"
ROLE = "https://keyworker-fhir.org/fhir/CodeSystem/keyworking-role"
V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"

Resource = dict[str, Any]


def _role(code: str, display: str) -> Resource:
    return {"coding": [{"system": ROLE, "code": code, "display": display}], "text": display}


def _member(
    ref: str, code: str, display: str, start: str | None = None, end: str | None = None
) -> Resource:
    member: Resource = {"member": {"reference": ref}, "role": [_role(code, display)]}
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    if period:
        member["period"] = period
    return member


SEED: list[Resource] = [
    {
        "resourceType": "Organization",
        "id": "org-a",
        "identifier": [{"system": ODS, "value": "A81001"}],
        "active": True,
        "name": "Riverside Practice",
        "alias": ["Riverside GP"],
    },
    {
        "resourceType": "Organization",
        "id": "org-b",
        "identifier": [{"system": ODS, "value": "B82002"}],
        "active": False,
        "name": "Hilltop Social Care",
        "partOf": {"reference": "Organization/org-a"},
    },
    {"resourceType": "Organization", "id": "org-c", "name": "Ébène Trust"},
    {
        "resourceType": "Practitioner",
        "id": "pr-1",
        "identifier": [{"system": GMC, "value": "1234567"}],
        "active": True,
        "name": [{"family": "Smith", "given": ["Anne"]}],
    },
    {
        "resourceType": "Practitioner",
        "id": "pr-2",
        "identifier": [{"system": GMC, "value": "7654321"}],
        "active": False,
        "name": [{"family": "Smythe", "given": ["Bob"]}],
    },
    {
        "resourceType": "Practitioner",
        "id": "pr-3",
        "name": [{"family": "Okafor", "given": ["Chidi", "Ada"]}],
    },
    {
        "resourceType": "Patient",
        "id": "pat-1",
        "identifier": [
            {"system": NHS, "value": "9434765919"},
            {
                "type": {"coding": [{"system": V2, "code": "MR"}], "text": "Hospital number"},
                "system": "https://riverside.example/mrn",
                "value": "MRN-1",
            },
        ],
        "active": True,
        "name": [{"family": "Müller", "given": ["Sam"]}],
        "gender": "female",
        "birthDate": "1950-03-04",
        "generalPractitioner": [{"reference": "Organization/org-a"}],
        "managingOrganization": {"reference": "Organization/org-a"},
    },
    {
        "resourceType": "Patient",
        "id": "pat-2",
        "identifier": [{"system": NHS, "value": "9434765870"}],
        "active": True,
        "name": [{"family": "Mullins", "given": ["Jo"]}],
        "gender": "male",
        "birthDate": "1988-11-30",
        "generalPractitioner": [{"reference": "Practitioner/pr-1"}],
    },
    {
        "resourceType": "Patient",
        "id": "pat-3",
        "active": False,
        "name": [{"family": "O'Brien", "given": ["Zoë"]}],
        "gender": "other",
        "birthDate": "2001",
        "managingOrganization": {"reference": "Organization/org-b"},
    },
    {
        "resourceType": "PractitionerRole",
        "id": "role-1",
        "active": True,
        "practitioner": {"reference": "Practitioner/pr-1"},
        "organization": {"reference": "Organization/org-a"},
        "code": [_role("keyworker", "Key worker")],
        "period": {"start": "2024-01-01", "end": "2024-12-31"},
    },
    {
        "resourceType": "PractitionerRole",
        "id": "role-2",
        "active": False,
        "practitioner": {"reference": "Practitioner/pr-2"},
        "organization": {"reference": "Organization/org-b"},
        "code": [{"coding": [{"system": SNOMED, "code": "768730001"}], "text": "Care coordinator"}],
        "period": {"start": "2025-06-01"},
    },
    {
        "resourceType": "RelatedPerson",
        "id": "rp-1",
        "patient": {"reference": "Patient/pat-1"},
        "identifier": [{"system": "https://riverside.example/carer", "value": "C-1"}],
        "name": [{"family": "Müller", "given": ["Mary"]}],
        "relationship": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}
                ]
            }
        ],
    },
    {
        "resourceType": "CareTeam",
        "id": "ct-1",
        "identifier": [{"system": "https://riverside.example/team", "value": "T-1"}],
        "status": "active",
        "category": [{"coding": [{"system": LOINC, "code": "LA27976-2"}], "text": "Case team"}],
        "subject": {"reference": "Patient/pat-1"},
        "period": {"start": "2024-01-01"},
        "participant": [
            _member("Practitioner/pr-1", "keyworker", "Key worker", "2024-01-01"),
            _member("Practitioner/pr-3", "accountable-professional", "Accountable", "2024-01-01"),
        ],
    },
    {
        "resourceType": "CareTeam",
        "id": "ct-2",
        "status": "inactive",
        "subject": {"reference": "Patient/pat-2"},
        "period": {"start": "2023-01-01", "end": "2023-12-31"},
        "participant": [
            _member("Practitioner/pr-1", "co-keyworker", "Co-key worker", "2023-02-01"),
            _member("RelatedPerson/rp-1", "case-team-member", "Case team member"),
        ],
    },
    {
        "resourceType": "CareTeam",
        "id": "ct-3",
        "status": "proposed",
        "subject": {"reference": "Patient/pat-1"},
        "participant": [
            _member("Practitioner/pr-2", "keyworker", "Key worker"),
            _member("Practitioner/pr-3", "co-keyworker", "Co-key worker"),
        ],
    },
    {
        "resourceType": "CareTeam",
        "id": "ct-4",
        "status": "active",
        "category": [{"text": "Social care team"}],
        "subject": {"identifier": {"system": NHS, "value": "9434765870"}},
        "period": {"start": "2025-03-01", "end": "2026-02-28"},
        "participant": [_member("Practitioner/pr-2", "cover-keyworker", "Cover")],
    },
    {
        "resourceType": "CareTeam",
        "id": "ct-5",
        "status": "active",
        "subject": {"reference": "Patient/pat-3"},
        "period": {"start": "2022-06-15T09:30:00Z", "end": "2022-06-15T17:00:00Z"},
    },
    {
        "resourceType": "CarePlan",
        "id": "cp-1",
        "identifier": [{"system": "https://riverside.example/plan", "value": "P-1"}],
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/pat-1"},
        "careTeam": [{"reference": "CareTeam/ct-1"}],
        "period": {"start": "2024-01-01", "end": "2024-12-31"},
        "activity": [
            {
                "detail": {
                    "code": {"coding": [{"system": SNOMED, "code": "410155007"}]},
                    "status": "scheduled",
                    "performer": [{"reference": "Practitioner/pr-1"}],
                    "scheduledPeriod": {"start": "2024-03-01", "end": "2024-03-31"},
                }
            }
        ],
    },
    {
        "resourceType": "CarePlan",
        "id": "cp-2",
        "status": "completed",
        "intent": "proposal",
        "subject": {"reference": "Patient/pat-2"},
        "careTeam": [{"reference": "CareTeam/ct-2"}],
        "basedOn": [{"reference": "CarePlan/cp-1"}],
        "replaces": [{"reference": "CarePlan/cp-1"}],
        "period": {"start": "2023-01-01"},
        "activity": [
            {
                "detail": {
                    "status": "completed",
                    "performer": [{"reference": "RelatedPerson/rp-1"}],
                    "scheduledString": "weekly",
                }
            }
        ],
    },
    {
        "resourceType": "CarePlan",
        "id": "cp-3",
        "status": "draft",
        "intent": "plan",
        "subject": {"reference": "Patient/pat-1"},
        "partOf": [{"reference": "CarePlan/cp-1"}],
        "careTeam": [{"reference": "CareTeam/ct-1"}, {"reference": "CareTeam/ct-3"}],
    },
]


async def seed(client: httpx.AsyncClient) -> list[Resource]:
    """Write the data set in order; returns the stored resources."""
    stored = []
    for body in SEED:
        response = await client.put(
            f"/{body['resourceType']}/{body['id']}", json=body, headers=FHIR
        )
        assert response.status_code == 201, (body["id"], response.text)
        stored.append(response.json())
    return stored


async def test_seed_loads_and_every_resource_is_found_by_id(client: httpx.AsyncClient) -> None:
    await seed(client)
    for rtype in sorted({r["resourceType"] for r in SEED}):
        response = await client.get(f"/{rtype}")
        assert response.status_code == 200
        found = [e["resource"]["id"] for e in response.json()["entry"]]
        assert found == [r["id"] for r in SEED if r["resourceType"] == rtype]
