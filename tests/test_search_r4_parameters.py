"""Every R4 search parameter of the seven writable types is served, under its R4 definition
URL, and the demographic ones record matching uses find what they should.

The table below is R4's own (https://hl7.org/fhir/R4/searchparameter-registry.html and each
type's search page), written out by hand rather than derived from the registry, so a wrong
URL or type in the registry fails here.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.test_search_seed import FHIR

_R4 = "http://hl7.org/fhir/SearchParameter/"
_PROJECT = "https://keyworker-fhir.org/fhir/SearchParameter/"


def _individual(*names: str) -> dict[str, tuple[str, str]]:
    """R4's shared ``individual-*`` definitions (Patient, Practitioner, RelatedPerson, ...)."""
    types = {
        "address": "string",
        "address-city": "string",
        "address-country": "string",
        "address-postalcode": "string",
        "address-state": "string",
        "address-use": "token",
        "birthdate": "date",
        "email": "token",
        "family": "string",
        "gender": "token",
        "given": "string",
        "phone": "token",
        "phonetic": "string",
        "telecom": "token",
    }
    return {n: (types[n], f"individual-{n}") for n in names}


_ADDRESS = ("address", "address-city", "address-country", "address-postalcode", "address-state")
_PERSON = (*_ADDRESS, "address-use", "email", "gender", "phone", "phonetic", "telecom")

R4_PARAMETERS: dict[str, dict[str, tuple[str, str]]] = {
    "Patient": {
        "active": ("token", "Patient-active"),
        "death-date": ("date", "Patient-death-date"),
        "deceased": ("token", "Patient-deceased"),
        "general-practitioner": ("reference", "Patient-general-practitioner"),
        "identifier": ("token", "Patient-identifier"),
        "language": ("token", "Patient-language"),
        "link": ("reference", "Patient-link"),
        "name": ("string", "Patient-name"),
        "organization": ("reference", "Patient-organization"),
        **_individual(*_PERSON, "birthdate", "family", "given"),
    },
    "Practitioner": {
        "active": ("token", "Practitioner-active"),
        "communication": ("token", "Practitioner-communication"),
        "identifier": ("token", "Practitioner-identifier"),
        "name": ("string", "Practitioner-name"),
        **_individual(*_PERSON, "family", "given"),
    },
    "RelatedPerson": {
        "active": ("token", "RelatedPerson-active"),
        "identifier": ("token", "RelatedPerson-identifier"),
        "name": ("string", "RelatedPerson-name"),
        "patient": ("reference", "RelatedPerson-patient"),
        "relationship": ("token", "RelatedPerson-relationship"),
        **_individual(*_PERSON, "birthdate"),
    },
    "PractitionerRole": {
        "active": ("token", "PractitionerRole-active"),
        "date": ("date", "PractitionerRole-date"),
        "endpoint": ("reference", "PractitionerRole-endpoint"),
        "identifier": ("token", "PractitionerRole-identifier"),
        "location": ("reference", "PractitionerRole-location"),
        "organization": ("reference", "PractitionerRole-organization"),
        "practitioner": ("reference", "PractitionerRole-practitioner"),
        "role": ("token", "PractitionerRole-role"),
        "service": ("reference", "PractitionerRole-service"),
        "specialty": ("token", "PractitionerRole-specialty"),
        **_individual("email", "phone", "telecom"),
    },
    "Organization": {
        "active": ("token", "Organization-active"),
        "address": ("string", "Organization-address"),
        "address-city": ("string", "Organization-address-city"),
        "address-country": ("string", "Organization-address-country"),
        "address-postalcode": ("string", "Organization-address-postalcode"),
        "address-state": ("string", "Organization-address-state"),
        "address-use": ("token", "Organization-address-use"),
        "endpoint": ("reference", "Organization-endpoint"),
        "identifier": ("token", "Organization-identifier"),
        "name": ("string", "Organization-name"),
        "partof": ("reference", "Organization-partof"),
        "phonetic": ("string", "Organization-phonetic"),
        "type": ("token", "Organization-type"),
    },
    "CareTeam": {
        "category": ("token", "CareTeam-category"),
        "date": ("date", "clinical-date"),
        "encounter": ("reference", "CareTeam-encounter"),
        "identifier": ("token", "clinical-identifier"),
        "participant": ("reference", "CareTeam-participant"),
        "patient": ("reference", "clinical-patient"),
        "status": ("token", "CareTeam-status"),
        "subject": ("reference", "CareTeam-subject"),
    },
    "CarePlan": {
        "activity-code": ("token", "CarePlan-activity-code"),
        "activity-date": ("date", "CarePlan-activity-date"),
        "activity-reference": ("reference", "CarePlan-activity-reference"),
        "based-on": ("reference", "CarePlan-based-on"),
        "care-team": ("reference", "CarePlan-care-team"),
        "category": ("token", "CarePlan-category"),
        "condition": ("reference", "CarePlan-condition"),
        "date": ("date", "clinical-date"),
        "encounter": ("reference", "CarePlan-encounter"),
        "goal": ("reference", "CarePlan-goal"),
        "identifier": ("token", "clinical-identifier"),
        "instantiates-canonical": ("reference", "CarePlan-instantiates-canonical"),
        "instantiates-uri": ("uri", "CarePlan-instantiates-uri"),
        "intent": ("token", "CarePlan-intent"),
        "part-of": ("reference", "CarePlan-part-of"),
        "patient": ("reference", "clinical-patient"),
        "performer": ("reference", "CarePlan-performer"),
        "replaces": ("reference", "CarePlan-replaces"),
        "status": ("token", "CarePlan-status"),
        "subject": ("reference", "CarePlan-subject"),
    },
}
_COMMON = {
    "_id": ("token", "Resource-id"),
    "_lastUpdated": ("date", "Resource-lastUpdated"),
    "_tag": ("token", "Resource-tag"),
    "_profile": ("uri", "Resource-profile"),
    "_security": ("token", "Resource-security"),
    "_source": ("uri", "Resource-source"),
}
# This server's own, published as SearchParameter resources under its canonical.
_CUSTOM = {"CareTeam": {"role": "token", "participant-role": "composite"}}


async def test_every_r4_parameter_is_served_under_its_r4_definition(
    client: httpx.AsyncClient,
) -> None:
    statement = (await client.get("/metadata")).json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    for resource_type, expected in R4_PARAMETERS.items():
        served = {p["name"]: p for p in resources[resource_type]["searchParam"]}
        custom = _CUSTOM.get(resource_type, {})
        assert set(served) == set(expected) | set(_COMMON) | set(custom), resource_type
        for name, (kind, definition) in {**expected, **_COMMON}.items():
            assert served[name]["type"] == kind, (resource_type, name)
            assert served[name]["definition"] == _R4 + definition, (resource_type, name)
        for name, kind in custom.items():
            assert served[name]["type"] == kind
            assert served[name]["definition"] == f"{_PROJECT}{resource_type}-{name}"


async def _put(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.put(f"/{body['resourceType']}/{body['id']}", json=body, headers=FHIR)
    assert response.status_code in (200, 201), response.text


async def _ids(client: httpx.AsyncClient, query: str) -> list[str]:
    response = await client.get(query)
    assert response.status_code == 200, (query, response.text)
    return [e["resource"]["id"] for e in response.json().get("entry", [])]


_HOME = {
    "use": "home",
    "line": ["1 Mill Lane"],
    "city": "Leeds",
    "state": "West Yorkshire",
    "postalCode": "LS1 4AP",
    "country": "GB",
}
_WORK = {"use": "work", "city": "York", "postalCode": "YO1 7HH", "country": "GB"}
_PEOPLE: list[dict[str, Any]] = [
    {"resourceType": "Organization", "id": "o-1", "name": "Mill Lane Surgery", "address": [_WORK]},
    {
        "resourceType": "Organization",
        "id": "o-2",
        "name": "Smyth Partnership",
        "type": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "prov",
                    }
                ]
            }
        ],
        "address": [{**_HOME, "use": "work"}],  # org-2: an organisation has no home
    },
    {"resourceType": "Practitioner", "id": "d-1", "name": [{"family": "Khan"}]},
    {
        "resourceType": "Practitioner",
        "id": "d-2",
        "name": [{"family": "Smith", "given": ["Jon"]}],
        "gender": "male",
        "telecom": [{"system": "email", "value": "jon.smith@nhs.example"}],
        "address": [_WORK],
        "communication": [{"coding": [{"system": "urn:ietf:bcp:47", "code": "cy"}]}],
    },
    {
        "resourceType": "PractitionerRole",
        "id": "r-1",
        "practitioner": {"reference": "Practitioner/d-2"},
        "specialty": [{"coding": [{"system": "http://snomed.info/sct", "code": "394814009"}]}],
        "telecom": [{"system": "phone", "value": "0113 496 0001"}],
    },
    {
        "resourceType": "Patient",
        "id": "p-1",
        "name": [{"family": "Smyth", "given": ["John"]}],
        "telecom": [
            {"system": "phone", "value": "07700 900001", "use": "mobile"},
            {"system": "email", "value": "john@example.org"},
        ],
        "address": [_HOME],
        "deceasedBoolean": False,
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "pa"}]}}],
        "generalPractitioner": [{"reference": "Practitioner/d-1"}],
        "managingOrganization": {"reference": "Organization/o-1"},
    },
    {
        "resourceType": "Patient",
        "id": "p-2",
        "name": [{"family": "Jones"}],
        "telecom": [{"system": "phone", "value": "07700 900002"}],
        "address": [_WORK],
        "deceasedDateTime": "2024-05-06",
        "link": [{"other": {"reference": "Patient/p-1"}, "type": "seealso"}],
    },
    {"resourceType": "Patient", "id": "p-3", "name": [{"family": "Brown"}]},
    {
        "resourceType": "RelatedPerson",
        "id": "k-1",
        "patient": {"reference": "Patient/p-1"},
        "name": [{"family": "Smith"}],
        "gender": "female",
        "birthDate": "1960-02-03",
        "telecom": [{"system": "phone", "value": "07700 900003"}],
        "address": [_HOME],
    },
]


async def test_demographic_parameters_find_the_people_they_name(
    client: httpx.AsyncClient,
) -> None:
    for body in _PEOPLE:
        await _put(client, body)
    expected = {
        "/Patient?address-postalcode=LS1": ["p-1"],
        "/Patient?address-city=york": ["p-2"],
        "/Patient?address-state=west": ["p-1"],
        "/Patient?address-country=GB": ["p-1", "p-2"],
        "/Patient?address=leeds": ["p-1"],
        "/Patient?address=1 mill": ["p-1"],
        "/Patient?address-use=work": ["p-2"],
        "/Patient?phone=07700 900002": ["p-2"],
        "/Patient?phone=john@example.org": [],
        "/Patient?email=john@example.org": ["p-1"],
        "/Patient?telecom=phone|07700 900001": ["p-1"],
        "/Patient?deceased=true": ["p-2"],
        "/Patient?deceased=false": ["p-1", "p-3"],
        "/Patient?death-date=2024-05": ["p-2"],
        "/Patient?language=urn:ietf:bcp:47|pa": ["p-1"],
        "/Patient?link=Patient/p-1": ["p-2"],
        "/Patient?general-practitioner=Practitioner/d-1": ["p-1"],
        "/Patient?organization=o-1": ["p-1"],
        "/Patient?phonetic=smith": ["p-1"],
        "/Patient?phonetic=jon": ["p-1"],
        "/Practitioner?email=jon.smith@nhs.example": ["d-2"],
        "/Practitioner?gender=male": ["d-2"],
        "/Practitioner?address-city=york": ["d-2"],
        "/Practitioner?communication=cy": ["d-2"],
        "/Practitioner?phonetic=smyth": ["d-2"],
        "/PractitionerRole?phone=0113 496 0001": ["r-1"],
        "/PractitionerRole?specialty=394814009": ["r-1"],
        "/RelatedPerson?phone=07700 900003": ["k-1"],
        "/RelatedPerson?address-postalcode=ls1 4ap": ["k-1"],
        "/RelatedPerson?birthdate=1960": ["k-1"],
        "/RelatedPerson?gender=female": ["k-1"],
        "/Organization?address-city=leeds": ["o-2"],
        "/Organization?address-postalcode=YO1": ["o-1"],
        "/Organization?type=prov": ["o-2"],
        "/Organization?phonetic=smith": ["o-2"],
    }
    for query, ids in expected.items():
        assert await _ids(client, query) == ids, query


async def test_a_care_plan_is_found_by_what_it_instantiates(client: httpx.AsyncClient) -> None:
    await _put(client, {"resourceType": "Patient", "id": "p-1"})
    plan = {
        "resourceType": "CarePlan",
        "id": "cp-1",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/p-1"},
        "instantiatesUri": ["https://guidance.example/falls|2"],
        "instantiatesCanonical": ["https://guidance.example/PlanDefinition/falls"],
    }
    await _put(client, plan)
    assert await _ids(client, "/CarePlan?instantiates-uri=https://guidance.example/falls|2") == [
        "cp-1"
    ]
    assert await _ids(client, "/CarePlan?instantiates-uri=https://guidance.example/falls") == []
    canonical = "/CarePlan?instantiates-canonical=https://guidance.example/PlanDefinition/falls"
    assert await _ids(client, canonical) == ["cp-1"]


async def test_phonetic_takes_no_text_modifier(client: httpx.AsyncClient) -> None:
    response = await client.get("/Patient?phonetic:exact=Smith")
    assert response.status_code == 400
    assert "phonetic:exact" in response.json()["issue"][0]["diagnostics"]


async def test_meta_parameters_find_tagged_and_profiled_records(client: httpx.AsyncClient) -> None:
    profile = "https://fhir.example.org/StructureDefinition/uk-patient"
    tagged = {
        "resourceType": "Patient",
        "id": "p-1",
        "meta": {
            "tag": [{"system": "https://tags.example", "code": "imported"}],
            "security": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
            ],
            "profile": [profile],
            "source": "https://ehr.example/fhir",
        },
    }
    await _put(client, tagged)
    await _put(client, {"resourceType": "Patient", "id": "p-2"})
    for query in (
        "/Patient?_tag=https://tags.example|imported",
        "/Patient?_security=R",
        f"/Patient?_profile={profile}",
        "/Patient?_source=https://ehr.example/fhir",
    ):
        assert await _ids(client, query) == ["p-1"], query
    assert await _ids(client, "/Patient?_tag=other") == []
    assert await _ids(client, "/Patient?_tag:not=https://tags.example|imported") == ["p-2"]
    refused = await client.get("/Patient?_id:not=p-1")
    assert refused.status_code == 400 and "_id:not" in refused.json()["issue"][0]["diagnostics"]
    audit = await client.get("/AuditEvent?_tag=x")
    assert audit.status_code == 400
    statement = (await client.get("/metadata")).json()
    audit_event = next(r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent")
    assert "_tag" not in {p["name"] for p in audit_event["searchParam"]}
