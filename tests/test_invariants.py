"""R4's invariants of the served types and their datatypes, checked on every write.

A resource breaking one is refused whole with 422: one issue per broken invariant, code
``invariant``, the key first in ``diagnostics``, the element in ``expression``; nothing is
written. Checked on the hot path (PUT, POST) and through the router (PATCH, transaction).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.keyworking_world import build, care_team, ok, participant

XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'
_PATIENT = {"resourceType": "Patient", "name": [{"family": "Doe"}]}
_PLAN = {"resourceType": "CarePlan", "status": "active", "intent": "plan"}
_PLAN_SUBJECT = {"subject": {"reference": "Patient/pat-1"}}
_ORG = {"resourceType": "Organization", "name": "Gray Street Surgery"}


def _detail(**extra: Any) -> dict[str, Any]:
    return {"activity": [{"detail": {"status": "scheduled", **extra}}]}


# case: (invariant key, body, the element named)
CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "ctm-1 a PractitionerRole member on behalf of an organisation": (
        "ctm-1",
        care_team(
            [
                {
                    **participant("keyworker", "PractitionerRole/r-kw"),
                    "onBehalfOf": {"reference": "Organization/org-sc"},
                }
            ]
        ),
        "CareTeam.participant[0]",
    ),
    "cpl-3 an activity with both a reference and a detail": (
        "cpl-3",
        {
            **_PLAN,
            **_PLAN_SUBJECT,
            "activity": [
                {
                    "reference": {"reference": "Appointment/a1"},
                    "detail": {"status": "scheduled"},
                }
            ],
        },
        "CarePlan.activity[0]",
    ),
    "pat-1 a contact with no details": (
        "pat-1",
        {**_PATIENT, "contact": [{"gender": "female"}]},
        "Patient.contact[0]",
    ),
    "org-1 an organisation with neither name nor identifier": (
        "org-1",
        {"resourceType": "Organization", "active": True},
        "Organization",
    ),
    "org-2 an organisation's home address": (
        "org-2",
        {**_ORG, "address": [{"use": "home", "city": "Leeds"}]},
        "Organization.address[0]",
    ),
    "org-3 an organisation's home telephone": (
        "org-3",
        {**_ORG, "telecom": [{"system": "phone", "value": "0113 496 0000", "use": "home"}]},
        "Organization.telecom[0]",
    ),
    "per-1 a period ending before it starts": (
        "per-1",
        {
            "resourceType": "PractitionerRole",
            "period": {"start": "2025-03-01", "end": "2025-02-01T10:00:00Z"},
        },
        "PractitionerRole.period",
    ),
    "ref-1 a local reference to nothing contained": (
        "ref-1",
        {**_PATIENT, "managingOrganization": {"reference": "#missing"}},
        "Patient.managingOrganization",
    ),
    "dom-3 a contained resource nothing refers to": (
        "dom-3",
        {**_PATIENT, "contained": [{"resourceType": "Organization", "id": "o", "name": "X"}]},
        "Patient",
    ),
    "dom-2 a contained resource containing another": (
        "dom-2",
        {
            **_PATIENT,
            "managingOrganization": {"reference": "#o"},
            "contained": [
                {
                    "resourceType": "Organization",
                    "id": "o",
                    "name": "X",
                    "contained": [{"resourceType": "Organization", "id": "p", "name": "Y"}],
                }
            ],
        },
        "Patient",
    ),
    "dom-4 a contained resource with a version": (
        "dom-4",
        {
            **_PATIENT,
            "managingOrganization": {"reference": "#o"},
            "contained": [
                {"resourceType": "Organization", "id": "o", "name": "X", "meta": {"versionId": "2"}}
            ],
        },
        "Patient",
    ),
    "ele-1 an element with only an id": (
        "ele-1",
        {
            "resourceType": "RelatedPerson",
            "patient": {"reference": "Patient/pat-1"},
            "name": [{"id": "n"}],
        },
        "RelatedPerson.name[0]",
    ),
    "ext-1 an extension with neither value nor extensions": (
        "ext-1",
        {**_PATIENT, "extension": [{"url": "https://example.org/fhir/StructureDefinition/x"}]},
        "Patient.extension[0]",
    ),
    "ext-1 an extension with both": (
        "ext-1",
        {
            **_PATIENT,
            "name": [
                {
                    "family": "Doe",
                    "extension": [
                        {
                            "url": "https://example.org/x",
                            "valueString": "a",
                            "extension": [{"url": "y", "valueString": "b"}],
                        }
                    ],
                }
            ],
        },
        "Patient.name[0].extension[0]",
    ),
    "txt-1 a script in the narrative": (
        "txt-1",
        {
            **_PATIENT,
            "text": {"status": "generated", "div": f"<div {XHTML}><script>x()</script></div>"},
        },
        "Patient.text.div",
    ),
    "txt-1 an event attribute": (
        "txt-1",
        {
            **_PATIENT,
            "text": {"status": "generated", "div": f'<div {XHTML}><p onclick="x()">Jo</p></div>'},
        },
        "Patient.text.div",
    ),
    "txt-1 a narrative outside the XHTML namespace": (
        "txt-1",
        {**_PATIENT, "text": {"status": "generated", "div": "<div><p>Jo</p></div>"}},
        "Patient.text.div",
    ),
    "txt-2 a narrative that says nothing": (
        "txt-2",
        {**_PATIENT, "text": {"status": "generated", "div": f"<div {XHTML}> <p/> </div>"}},
        "Patient.text.div",
    ),
    "cpt-2 a telephone number with no system": (
        "cpt-2",
        {"resourceType": "Practitioner", "telecom": [{"value": "0113 496 0000"}]},
        "Practitioner.telecom[0]",
    ),
    "att-1 a photo with data and no content type": (
        "att-1",
        {"resourceType": "Practitioner", "photo": [{"data": "aGVsbG8="}]},
        "Practitioner.photo[0]",
    ),
    "qty-3 a unit code with no system": (
        "qty-3",
        {**_PLAN, **_PLAN_SUBJECT, **_detail(quantity={"value": 1, "code": "mg"})},
        "CarePlan.activity[0].detail.quantity",
    ),
    "sqty-1 a comparator on a simple quantity": (
        "sqty-1",
        {**_PLAN, **_PLAN_SUBJECT, **_detail(dailyAmount={"value": 1, "comparator": "<"})},
        "CarePlan.activity[0].detail.dailyAmount",
    ),
    "tim-2 a period with no unit": (
        "tim-2",
        {**_PLAN, **_PLAN_SUBJECT, **_detail(scheduledTiming={"repeat": {"period": 1}})},
        "CarePlan.activity[0].detail.scheduledTiming.repeat",
    ),
    "tim-10 both a time of day and a when": (
        "tim-10",
        {
            **_PLAN,
            **_PLAN_SUBJECT,
            **_detail(scheduledTiming={"repeat": {"timeOfDay": ["09:00:00"], "when": ["MORN"]}}),
        },
        "CarePlan.activity[0].detail.scheduledTiming.repeat",
    ),
    "rng-2 a range whose low is above its high": (
        "rng-2",
        {
            **_PLAN,
            **_PLAN_SUBJECT,
            **_detail(
                scheduledTiming={
                    "repeat": {"boundsRange": {"low": {"value": 5}, "high": {"value": 2}}}
                }
            ),
        },
        "CarePlan.activity[0].detail.scheduledTiming.repeat.boundsRange",
    ),
    "drt-1 a duration in a unit system other than UCUM": (
        "drt-1",
        {
            **_PLAN,
            **_PLAN_SUBJECT,
            **_detail(
                scheduledTiming={
                    "repeat": {
                        "boundsDuration": {
                            "value": 2,
                            "system": "https://example.org",
                            "code": "wk",
                        }
                    }
                }
            ),
        },
        "CarePlan.activity[0].detail.scheduledTiming.repeat.boundsDuration",
    ),
}


def _issues(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issues: list[dict[str, Any]] = outcome["issue"]
    return issues


def _named(issues: list[dict[str, Any]], key: str) -> dict[str, Any]:
    (issue,) = [i for i in issues if f"{key}:" in i["diagnostics"]]
    assert issue["code"] == "invariant"
    assert issue["severity"] == "error"
    return issue


@pytest.mark.parametrize("case", list(CASES))
async def test_a_broken_invariant_refuses_the_write_whole(
    client: httpx.AsyncClient, db_state: Callable[[], Awaitable[dict[str, int]]], case: str
) -> None:
    await build(client)
    key, body, element = CASES[case]
    before = await db_state()
    rtype = body["resourceType"]
    put = await client.put(f"/{rtype}/broken", json={**body, "id": "broken"})
    issue = _named(_issues(put), key)
    assert issue["diagnostics"].startswith(f"{key}: ")
    assert issue["expression"] == [element]
    post = await client.post(f"/{rtype}", json=body)
    assert _named(_issues(post), key)["expression"] == [element]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": body, "request": {"method": "POST", "url": rtype}}],
    }
    refused = _named(_issues(await client.post("/", json=bundle)), key)
    assert refused["expression"][0].startswith("Bundle.entry[0].resource")
    assert await db_state() == before
    assert (await client.get(f"/{rtype}/broken")).status_code == 404


async def test_a_patch_that_breaks_an_invariant_is_refused(client: httpx.AsyncClient) -> None:
    await build(client)
    await ok(client, care_team([participant("keyworker", "PractitionerRole/r-kw")]), "ct")
    patch = [
        {
            "op": "add",
            "path": "/participant/0/onBehalfOf",
            "value": {"reference": "Organization/org-sc"},
        }
    ]
    response = await client.patch(
        "/CareTeam/ct", json=patch, headers={"Content-Type": "application/json-patch+json"}
    )
    assert _named(_issues(response), "ctm-1")["expression"] == ["CareTeam.participant[0]"]
    assert (await client.get("/CareTeam/ct")).json()["meta"]["versionId"] == "1"


async def test_every_broken_invariant_is_reported_at_once(client: httpx.AsyncClient) -> None:
    body = {
        "resourceType": "Organization",
        "telecom": [{"value": "0113 496 0000", "use": "home"}],
        "extension": [{"url": "https://example.org/x"}],
    }
    issues = _issues(await client.post("/Organization", json=body))
    keys = sorted(i["diagnostics"].split(":")[0] for i in issues)
    assert keys == ["cpt-2", "ext-1", "org-1", "org-3"]


ACCEPTED: dict[str, dict[str, Any]] = {
    "onBehalfOf for a Practitioner member": care_team(
        [
            {
                **participant("keyworker", "Practitioner/p-kw"),
                "onBehalfOf": {"reference": "Organization/org-sc"},
            }
        ]
    ),
    "onBehalfOf for a member known by identifier alone": care_team(
        [
            {
                "member": {"identifier": {"system": "https://example.org/staff", "value": "S1"}},
                "onBehalfOf": {"reference": "Organization/org-sc"},
            }
        ]
    ),
    "onBehalfOf for a contained Practitioner": {
        **care_team(
            [{"member": {"reference": "#kim"}, "onBehalfOf": {"reference": "Organization/org-sc"}}]
        ),
        "contained": [{"resourceType": "Practitioner", "id": "kim", "name": [{"family": "Walsh"}]}],
    },
    "a narrative of R4's own markup, with an HTML entity": {
        **_PATIENT,
        "text": {
            "status": "generated",
            "div": f'<div {XHTML}><p><b>Jo&nbsp;Doe</b>, see <a href="https://example.org">'
            'here</a></p><table border="1"><tr><td colspan="2">x</td></tr></table></div>',
        },
    },
    "a primitive's id beside its value": {
        **_PATIENT,
        "birthDate": "1970-01-01",
        "_birthDate": {"id": "b"},
    },
    "a period of a day and a later instant the same day": {
        "resourceType": "PractitionerRole",
        "period": {"start": "2025-03-01", "end": "2025-03-01T10:00:00Z"},
    },
    "a timing with its units": {
        **_PLAN,
        **_PLAN_SUBJECT,
        **_detail(scheduledTiming={"repeat": {"period": 1, "periodUnit": "wk"}}),
    },
}


@pytest.mark.parametrize("case", list(ACCEPTED))
async def test_what_keeps_the_invariants_is_accepted(client: httpx.AsyncClient, case: str) -> None:
    await build(client)
    body = ACCEPTED[case]
    response = await client.post(f"/{body['resourceType']}", json=body)
    assert response.status_code == 201, response.text
