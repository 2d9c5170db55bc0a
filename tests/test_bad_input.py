"""Malformed and invalid requests: each is refused with the right status and an
OperationOutcome that says what is wrong and where, and nothing is written.

Every case runs on each backend against a small seeded database:

- ``{pid}``   a Patient (gender male, born 1980-02-29)
- ``{prid}``  a Practitioner
- ``{tid}``   a CareTeam for the Patient, at version 2
- ``{gone}``  a Patient that was deleted
- two more Patients sharing the identifier ``http://example.org/mrn|dup``

Placeholders in a case's path and body are filled in with those ids.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

FHIR_JSON = "application/fhir+json"
FHIR = {"Content-Type": FHIR_JSON}
PATCH = {"Content-Type": "application/json-patch+json"}
DUP = "http://example.org/mrn|dup"


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    status: int
    expression: str | None = None  # must be one of some issue's expressions
    text: str | None = None  # must appear (case-insensitively) in some issue's diagnostics
    min_issues: int = 1
    settings: dict[str, Any] = field(default_factory=dict)


def j(value: Any) -> bytes:
    return json.dumps(value).encode()


def team(**elements: Any) -> bytes:
    return j({"resourceType": "CareTeam", "status": "active", **elements})


SUBJECT = {"reference": "Patient/{pid}"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def nested_extensions(depth: int) -> dict[str, Any]:
    """A Patient whose extension holds an extension, ``depth`` times over."""
    extension: dict[str, Any] = {"url": "http://example.org/x", "valueString": "x"}
    for _ in range(depth):
        extension = {"url": "http://example.org/x", "extension": [extension]}
    return {"resourceType": "Patient", "extension": [extension]}


def nested_contained(depth: int) -> dict[str, Any]:
    """A Patient containing a Patient that contains one, ``depth`` times over."""
    resource: dict[str, Any] = {"resourceType": "Patient", "id": "c0"}
    for level in range(1, depth):
        resource = {"resourceType": "Patient", "id": f"c{level}", "contained": [resource]}
    return {"resourceType": "Patient", "contained": [resource]}


CASES = [
    # -- bodies that are not JSON objects ------------------------------------------------
    Case(
        "malformed-json", "POST", "/Patient", FHIR, b'{"resourceType": "Patient",', 400, text="JSON"
    ),
    Case(
        "invalid-utf8",
        "POST",
        "/Patient",
        FHIR,
        b'{"resourceType": "Patient\xff"}',
        400,
        text="JSON",
    ),
    Case("empty-body", "POST", "/Patient", FHIR, b"", 400, text="JSON"),
    Case(
        "json-array", "POST", "/Patient", FHIR, j([{"resourceType": "Patient"}]), 400, text="object"
    ),
    Case("json-null", "POST", "/Patient", FHIR, b"null", 400, text="object"),
    # -- structurally invalid resources --------------------------------------------------
    Case(
        "wrong-resource-type", "POST", "/Patient", FHIR, team(subject=SUBJECT), 400, text="CareTeam"
    ),
    Case(
        "unknown-element",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "favouriteColour": "blue"}),
        400,
        expression="Patient.favouriteColour",
    ),
    Case(
        "null-in-a-list-of-elements",
        "POST",
        "/CareTeam",
        FHIR,
        j({"resourceType": "CareTeam", "subject": SUBJECT, "participant": [{"role": [None]}]}),
        400,
        expression="CareTeam.participant[0].role",
    ),
    Case(
        "null-in-a-list-of-resource-elements",
        "POST",
        "/CarePlan",
        FHIR,
        j(
            {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "subject": SUBJECT,
                "activity": [None],
            }
        ),
        400,
        expression="CarePlan.activity",
    ),
    Case(
        "bad-date",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "birthDate": "1980-13-45"}),
        400,
        expression="Patient.birthDate",
    ),
    Case(
        "bad-status-code",
        "POST",
        "/CareTeam",
        FHIR,
        j({"resourceType": "CareTeam", "status": "sleeping", "subject": SUBJECT}),
        400,
        expression="CareTeam.status",
    ),
    Case(
        "bad-gender-code",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "gender": "robot"}),
        400,
        expression="Patient.gender",
    ),
    Case(
        "wrong-datatype",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "name": "Amara Okafor"}),
        400,
        expression="Patient.name",
    ),
    Case(
        "bad-participant-period",
        "POST",
        "/CareTeam",
        FHIR,
        team(
            subject=SUBJECT,
            participant=[
                {"member": {"reference": "Practitioner/{prid}"}, "period": {"start": "soon"}}
            ],
        ),
        400,
        expression="CareTeam.participant[0].period.start",
    ),
    Case(
        "several-errors",
        "POST",
        "/Patient",
        FHIR,
        j(
            {
                "resourceType": "Patient",
                "birthDate": "yesterday",
                "favouriteColour": "blue",
                "active": "perhaps",
            }
        ),
        400,
        expression="Patient.birthDate",
        min_issues=2,
    ),
    Case(
        "put-id-mismatch",
        "PUT",
        "/Patient/{pid}",
        FHIR,
        j({"resourceType": "Patient", "id": "someone-else"}),
        400,
        expression="Patient.id",
    ),
    Case(
        "put-invalid-url-id",
        "PUT",
        "/Patient/not_a$valid_id",
        FHIR,
        j({"resourceType": "Patient"}),
        400,
        text="id",
    ),
    Case(
        "put-overlong-url-id",
        "PUT",
        "/Patient/" + "a" * 65,
        FHIR,
        j({"resourceType": "Patient"}),
        400,
        text="id",
    ),
    # -- what the URL names does not exist -----------------------------------------------
    Case("unknown-type", "GET", "/Spaceship/1", {}, None, 404, text="Spaceship"),
    Case("unknown-id", "GET", "/Patient/no-such-patient", {}, None, 404, text="no-such-patient"),
    Case("unknown-version", "GET", "/Patient/{pid}/_history/99", {}, None, 404, text="99"),
    Case(
        "patch-unknown-id",
        "PATCH",
        "/Patient/no-such-patient",
        PATCH,
        j([{"op": "replace", "path": "/gender", "value": "female"}]),
        404,
    ),
    # -- media types, size and format ----------------------------------------------------
    Case(
        "text-plain",
        "POST",
        "/Patient",
        {"Content-Type": "text/plain"},
        j({"resourceType": "Patient"}),
        415,
        text="text/plain",
    ),
    Case("no-content-type", "POST", "/Patient", {}, j({"resourceType": "Patient"}), 415),
    Case(
        "patch-as-json",
        "PATCH",
        "/Patient/{pid}",
        {"Content-Type": "application/json"},
        j([{"op": "replace", "path": "/gender", "value": "female"}]),
        415,
        text="application/json-patch+json",
    ),
    Case(
        "too-large",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "name": [{"text": "x" * 3000}]}),
        413,
        text="2000",
        settings={"max_body_bytes": 2000},
    ),
    Case("format-xml", "GET", "/Patient/{pid}?_format=xml", {}, None, 406, text="xml"),
    Case("accept-xml", "GET", "/Patient/{pid}", {"Accept": "application/fhir+xml"}, None, 406),
    # -- references ----------------------------------------------------------------------
    Case(
        "unknown-subject",
        "POST",
        "/CareTeam",
        FHIR,
        team(subject={"reference": "Patient/no-such-patient"}),
        422,
        expression="CareTeam.subject",
    ),
    Case(
        "disallowed-reference-type",
        "POST",
        "/CareTeam",
        FHIR,
        team(subject={"reference": "Practitioner/{prid}"}),
        422,
        expression="CareTeam.subject",
    ),
    Case(
        "deleted-subject",
        "POST",
        "/CareTeam",
        FHIR,
        team(subject={"reference": "Patient/{gone}"}),
        422,
        expression="CareTeam.subject",
    ),
    Case(
        "unknown-participant-member",
        "POST",
        "/CareTeam",
        FHIR,
        team(
            subject=SUBJECT,
            participant=[{"member": {"reference": "Practitioner/no-such-practitioner"}}],
        ),
        422,
        expression="CareTeam.participant[0].member",
    ),
    Case(
        "reference-not-a-reference",
        "POST",
        "/CareTeam",
        FHIR,
        team(subject={"reference": "the patient in bed 4"}),
        422,
        expression="CareTeam.subject",
    ),
    Case(
        "empty-reference-id",
        "POST",
        "/CareTeam",
        FHIR,
        team(subject={"reference": "Patient/"}),
        422,
        expression="CareTeam.subject",
    ),
    Case(
        "empty-reference-id-on-update",
        "PUT",
        "/CareTeam/{tid}",
        FHIR,
        team(id="{tid}", subject={"reference": "Patient/"}),
        422,
        expression="CareTeam.subject",
    ),
    # -- versions and conditional interactions -------------------------------------------
    Case(
        "stale-if-match",
        "PUT",
        "/CareTeam/{tid}",
        {**FHIR, "If-Match": 'W/"1"'},
        team(id="{tid}", subject=SUBJECT),
        412,
        text="version",
    ),
    Case(
        "stale-if-match-delete",
        "DELETE",
        "/CareTeam/{tid}",
        {"If-Match": 'W/"1"'},
        None,
        412,
        text="version",
    ),
    Case(
        "if-match-not-etag",
        "PUT",
        "/CareTeam/{tid}",
        {**FHIR, "If-Match": "banana"},
        team(id="{tid}", subject=SUBJECT),
        400,
        text="If-Match",
    ),
    Case("post-on-instance", "POST", "/Patient/{pid}", FHIR, j({"resourceType": "Patient"}), 405),
    Case(
        "conditional-update-two-matches",
        "PUT",
        f"/Patient?identifier={DUP}",
        FHIR,
        j(
            {
                "resourceType": "Patient",
                "identifier": [{"system": "http://example.org/mrn", "value": "dup"}],
            }
        ),
        412,
        text="2",
    ),
    # -- history -------------------------------------------------------------------------
    Case("bad-since", "GET", "/Patient/_history?_since=yesterday", {}, None, 400, text="_since"),
    Case("bad-count", "GET", "/Patient/{pid}/_history?_count=many", {}, None, 400, text="_count"),
    Case("unknown-history-parameter", "GET", "/_history?colour=blue", {}, None, 400, text="colour"),
    # -- numbers that str.isdigit() accepts and int() does not (found by the search fuzzer) --
    Case("search-count-superscript", "GET", "/Patient?_count=%C2%B2", {}, None, 400, text="_count"),
    Case(
        "history-count-superscript", "GET", "/_history?_count=%C2%B2", {}, None, 400, text="_count"
    ),
    Case(
        "history-count-huge", "GET", "/_history?_count=" + "9" * 5000, {}, None, 400, text="_count"
    ),
    Case("vread-version-superscript", "GET", "/Patient/{pid}/_history/%C2%B2", {}, None, 404),
    Case(
        "gaps-within-superscript",
        "GET",
        "/$accountability-gaps?within=%C2%B2",
        {},
        None,
        400,
        text="within",
    ),
    Case(
        "null-element",
        "POST",
        "/CarePlan",
        FHIR,
        j(
            {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "subject": SUBJECT,
                "period": {"start": "2024-01-01", "end": None},
            }
        ),
        400,
        expression="CarePlan.period.end",
        text="null",
    ),
    Case(
        "bundle-entry-id-not-a-string",
        "POST",
        "",
        FHIR,
        j(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {"resourceType": "CarePlan", "id": False},
                        "request": {"method": "PUT", "url": "CarePlan?_id=active"},
                    }
                ],
            }
        ),
        400,
        expression="Bundle.entry[0].resource.id",
    ),
    Case(
        "absolute-reference-to-a-type-the-element-does-not-allow",
        "POST",
        "/PractitionerRole",
        FHIR,
        j(
            {
                "resourceType": "PractitionerRole",
                "organization": {"reference": "http://elsewhere.example/fhir/Patient/pat-1"},
            }
        ),
        422,
        expression="PractitionerRole.organization",
        text="Patient",
    ),
    # -- NUL, which no FHIR string holds and PostgreSQL text cannot (the input screen) -------
    Case(
        "nul-in-a-string",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "name": [{"family": "Oka\u0000for"}]}),
        400,
        expression="Patient.name[0].family",
        text="NUL",
    ),
    Case(
        "control-character-in-a-string",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "name": [{"family": "Oka\u000bfor"}]}),
        400,
        expression="Patient.name[0].family",
        text="U+000B",
    ),
    Case(
        "backspace-escape-in-a-string",
        "POST",
        "/Patient",
        FHIR,
        b'{"resourceType": "Patient", "name": [{"given": ["A\\bB"]}]}',
        400,
        expression="Patient.name[0].given[0]",
        text="U+0008",
    ),
    Case(
        "nul-in-an-element-name",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "gender\u0000": "male"}),
        400,
        expression="Patient.gender%00",
    ),
    Case(
        "nul-in-an-update",
        "PUT",
        "/CareTeam/{tid}",
        FHIR,
        team(id="{tid}", subject=SUBJECT, name="Key\u0000working"),
        400,
        expression="CareTeam.name",
    ),
    Case(
        "nul-in-a-bundle-entry",
        "POST",
        "",
        FHIR,
        j(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {"resourceType": "Patient", "name": [{"given": ["A\u0000"]}]},
                        "request": {"method": "POST", "url": "Patient"},
                    }
                ],
            }
        ),
        400,
        expression="Bundle.entry[0].resource.name[0].given[0]",
    ),
    Case(
        "nul-in-a-patch-value",
        "PATCH",
        "/Patient/{pid}",
        PATCH,
        j([{"op": "replace", "path": "/gender", "value": "fe\u0000male"}]),
        400,
        expression="[0].value",
    ),
    Case(
        "nul-in-a-handover",
        "POST",
        "/CareTeam/{tid}/$handover",
        FHIR,
        j(
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "reason", "valueString": "\u0000"}],
            }
        ),
        400,
        expression="Parameters.parameter[0].valueString",
    ),
    Case("nul-in-a-read-id", "GET", "/Patient/a%00b", {}, None, 400, text="NUL"),
    Case("nul-in-an-update-id", "PUT", "/Patient/a%00b", FHIR, j({"resourceType": "Patient"}), 400),
    Case("nul-in-a-history-id", "GET", "/Patient/a%00b/_history", {}, None, 400, text="NUL"),
    Case(
        "nul-in-accountable-patient",
        "GET",
        "/CareTeam/$accountable?patient=Patient/a%00b",
        {},
        None,
        400,
        expression="patient",
    ),
    Case(
        "nul-in-accountable-date",
        "GET",
        "/CareTeam/$accountable?patient=Patient/{pid}&date=2025%00",
        {},
        None,
        400,
        expression="date",
    ),
    Case("nul-in-caseload-id", "GET", "/Organization/a%00b/$caseload", {}, None, 400, text="NUL"),
    Case(
        "nul-in-gaps-organization",
        "GET",
        "/$accountability-gaps?organization=%00",
        {},
        None,
        400,
        expression="organization",
    ),
    Case("nul-in-a-sort", "GET", "/Patient?_sort=%00", {}, None, 400, expression="_sort"),
    Case("nul-in-since", "GET", "/_history?_since=2025%00", {}, None, 400, expression="_since"),
    Case("nul-in-a-parameter-name", "GET", "/Patient?fam%00ily=x", {}, None, 400, text="fam%00ily"),
    Case(
        "nul-in-a-search-form",
        "POST",
        "/Patient/_search",
        FORM,
        b"gender=male&family=Oka%00for",
        400,
        expression="family",
    ),
    Case(
        "search-form-not-utf8",
        "POST",
        "/Patient/_search",
        FORM,
        b"family=Oka\xffor",
        400,
        text="UTF-8",
    ),
    Case(
        "nul-in-a-conditional-create",
        "POST",
        "/Patient",
        {**FHIR, "If-None-Exist": "identifier=a%00b"},
        j({"resourceType": "Patient"}),
        400,
    ),
    # -- depth and length limits (max_json_depth, max_string_length) ---------------------
    Case(
        "extensions-150-deep",
        "POST",
        "/Patient",
        FHIR,
        j(nested_extensions(150)),
        400,
        text="deeper than 64",
    ),
    Case(
        "contained-200-deep",
        "POST",
        "/Patient",
        FHIR,
        j(nested_contained(200)),
        400,
        text="deeper than 64",
    ),
    Case(
        "deep-in-a-bundle",
        "POST",
        "",
        FHIR,
        j(
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {
                        "resource": nested_extensions(40),
                        "request": {"method": "POST", "url": "Patient"},
                    }
                ],
            }
        ),
        400,
        text="deeper than 64",
    ),
    Case(
        "string-over-the-limit",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "name": [{"family": "x" * 101}]}),
        400,
        expression="Patient.name[0].family",
        text="100 characters",
        settings={"max_string_length": 100},
    ),
    # -- JSON types are strict: no string for a boolean or number, no number for a string --
    Case(
        "boolean-as-string",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "active": "true"}),
        400,
        expression="Patient.active",
    ),
    Case(
        "boolean-as-number",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "active": 1}),
        400,
        expression="Patient.active",
    ),
    Case(
        "integer-as-string",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "multipleBirthInteger": "2"}),
        400,
        expression="Patient.multipleBirthInteger",
    ),
    Case(
        "integer-as-decimal",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "multipleBirthInteger": 2.0}),
        400,
        expression="Patient.multipleBirthInteger",
    ),
    Case(
        "decimal-as-string",
        "POST",
        "/Patient",
        FHIR,
        j(
            {
                "resourceType": "Patient",
                "extension": [{"url": "http://example.org/x", "valueDecimal": "1.5"}],
            }
        ),
        400,
        expression="Patient.extension[0].valueDecimal",
    ),
    Case(
        "date-as-number",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "birthDate": 0}),
        400,
        expression="Patient.birthDate",
    ),
    Case(
        "datetime-as-number",
        "POST",
        "/Patient",
        FHIR,
        j({"resourceType": "Patient", "deceasedDateTime": 1700000000}),
        400,
        expression="Patient.deceasedDateTime",
    ),
    Case(
        "boolean-as-string-in-a-bundle",
        "POST",
        "",
        FHIR,
        j(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {"resourceType": "Patient", "active": "false"},
                        "request": {"method": "POST", "url": "Patient"},
                    }
                ],
            }
        ),
        400,
        text="boolean",
    ),
    # -- dates: a time needs a zone; the years are 0001 to 9999 --------------------------
    Case(
        "search-time-without-zone",
        "GET",
        "/CareTeam?date=2024-01-01T10:00:00",
        {},
        None,
        400,
        text="time zone",
    ),
    Case(
        "accountable-time-without-zone",
        "GET",
        "/CareTeam/$accountable?patient=Patient/{pid}&date=2024-01-01T10:00:00",
        {},
        None,
        400,
        expression="date",
    ),
    Case(
        "accountable-year-zero",
        "GET",
        "/CareTeam/$accountable?patient=Patient/{pid}&date=0000-01-01",
        {},
        None,
        400,
        expression="date",
    ),
    # -- If-Match must be a version ETag, W/"n" --------------------------------------------
    *(
        Case(
            f"if-match-{name}-{method.lower()}",
            method,
            "/CareTeam/{tid}",
            {**(FHIR if method == "PUT" else {}), "If-Match": value},
            team(id="{tid}", subject=SUBJECT) if method == "PUT" else None,
            400,
            text="If-Match",
        )
        for name, value in (("strong", '"2"'), ("unquoted", "W/2"), ("bare", "2"))
        for method in ("PUT", "DELETE")
    ),
    Case(
        "if-match-huge",
        "PUT",
        "/CareTeam/{tid}",
        {**FHIR, "If-Match": 'W/"' + "9" * 30 + '"'},
        team(id="{tid}", subject=SUBJECT),
        400,
        text="If-Match",
    ),
    Case(
        "bundle-if-match-strong",
        "POST",
        "",
        FHIR,
        j(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {"resourceType": "Patient", "id": "{pid}"},
                        "request": {"method": "PUT", "url": "Patient/{pid}", "ifMatch": '"1"'},
                    }
                ],
            }
        ),
        400,
        text="If-Match",
        expression="Bundle.entry[0].request.ifMatch",
    ),
    Case(
        "bundle-if-match-number",
        "POST",
        "",
        FHIR,
        j(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {"resourceType": "Patient", "id": "{pid}"},
                        "request": {"method": "PUT", "url": "Patient/{pid}", "ifMatch": 1},
                    }
                ],
            }
        ),
        400,
        expression="Bundle.entry[0].request.ifMatch",
    ),
    # -- JSON Patch ----------------------------------------------------------------------
    Case(
        "patch-not-array",
        "PATCH",
        "/Patient/{pid}",
        PATCH,
        j({"op": "replace", "path": "/gender", "value": "female"}),
        400,
        text="array",
    ),
    Case(
        "patch-op-malformed",
        "PATCH",
        "/Patient/{pid}",
        PATCH,
        j([{"path": "/gender", "value": "female"}]),
        400,
    ),
    Case(
        "patch-test-fails",
        "PATCH",
        "/Patient/{pid}",
        PATCH,
        j(
            [
                {"op": "test", "path": "/gender", "value": "female"},
                {"op": "replace", "path": "/gender", "value": "other"},
            ]
        ),
        422,
    ),
    Case(
        "patch-leaves-invalid-resource",
        "PATCH",
        "/Patient/{pid}",
        PATCH,
        j([{"op": "replace", "path": "/birthDate", "value": "not-a-date"}]),
        400,
        expression="Patient.birthDate",
    ),
    Case(
        "patch-changes-id",
        "PATCH",
        "/Patient/{pid}",
        PATCH,
        j([{"op": "replace", "path": "/id", "value": "someone-else"}]),
        400,
        expression="Patient.id",
    ),
]


Seed = dict[str, str]


async def _created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> str:
    response = await client.post(path, json=body, headers=FHIR)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _seed(client: httpx.AsyncClient) -> Seed:
    pid = await _created(
        client,
        "/Patient",
        {
            "resourceType": "Patient",
            "name": [{"family": "Okafor", "given": ["Amara"]}],
            "gender": "male",
            "birthDate": "1980-02-29",
        },
    )
    prid = await _created(
        client, "/Practitioner", {"resourceType": "Practitioner", "name": [{"family": "Patel"}]}
    )
    team_body = {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": f"Patient/{pid}"},
    }
    tid = await _created(client, "/CareTeam", team_body)
    updated = await client.put(
        f"/CareTeam/{tid}", json={**team_body, "id": tid, "name": "Keyworking"}, headers=FHIR
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["meta"]["versionId"] == "2"
    for given in ("One", "Two"):
        await _created(
            client,
            "/Patient",
            {
                "resourceType": "Patient",
                "name": [{"given": [given]}],
                "identifier": [{"system": "http://example.org/mrn", "value": "dup"}],
            },
        )
    gone = await _created(client, "/Patient", {"resourceType": "Patient"})
    assert (await client.delete(f"/Patient/{gone}")).status_code == 204
    return {"pid": pid, "prid": prid, "tid": tid, "gone": gone}


def _fill(text: str, seed: Seed) -> str:
    for key, value in seed.items():
        text = text.replace("{" + key + "}", value)
    return text


def _check_outcome(case: Case, response: httpx.Response) -> None:
    raw = response.text
    assert "Traceback" not in raw and 'File "' not in raw, raw
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", raw
    issues = outcome["issue"]
    assert len(issues) >= case.min_issues, raw
    for issue in issues:
        assert issue["severity"] == "error", raw
        assert isinstance(issue.get("code"), str) and issue["code"], raw
        assert isinstance(issue.get("diagnostics"), str) and issue["diagnostics"], raw
    if case.expression is not None:
        expressions = [e for issue in issues for e in issue.get("expression", [])]
        assert case.expression in expressions, f"{case.expression} not in {expressions}"
    if case.text is not None:
        diagnostics = " ".join(issue["diagnostics"] for issue in issues).lower()
        assert case.text.lower() in diagnostics, raw


def test_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_input_is_refused_whole(
    case: Case,
    client: httpx.AsyncClient,
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]],
    db_state: Callable[[], Awaitable[dict[str, int]]],
) -> None:
    seed = await _seed(client)
    target = await app_factory(**case.settings) if case.settings else client
    content = None
    if case.body is not None:
        body = _fill(case.body.decode("utf-8", "surrogateescape"), seed)
        content = body.encode("utf-8", "surrogateescape")
    before = await db_state()

    response = await target.request(
        case.method, _fill(case.path, seed), headers=case.headers, content=content
    )

    assert response.status_code != 500, response.text
    assert response.status_code == case.status, response.text
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media == FHIR_JSON, response.headers
    _check_outcome(case, response)
    assert await db_state() == before, "a refused request changed the database"
