"""The input screen beyond the table of refusals in test_bad_input: what must still be
answered (dates at the ends of the calendar, nesting up to the limit, a form search), what
the token endpoint refuses in its own language, and a streamed answer that checks every
parameter before its first byte."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt

from tests.authkit import TOKEN_URL, bearer, mint, public_jwks, register, rsa_key, secure_client
from tests.keyworking_world import build
from tests.test_bad_input import nested_extensions

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
FHIR = {"Content-Type": "application/fhir+json"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.mark.parametrize(
    "path",
    [
        "/CareTeam/$accountable?patient=Patient/pat-1&date=9999-12-31",
        "/CareTeam/$accountable?patient=Patient/pat-1&date=9999",
        "/CareTeam/$accountable?patient=Patient/pat-1&date=9999-12-31T23:59:59-01:00",
        "/CareTeam/$accountable?patient=Patient/pat-1&date=0001-01-01",
        "/CareTeam/$accountable?patient=Patient/pat-1&date=0001-01-01T00:00:00%2B14:00",
        "/Organization/org-sc/$caseload?date=9999-12-31",
        "/Organization/org-sc/$caseload?date=0001-01-01",
        "/CareTeam?date=9999-12-31T23:59:59-01:00",
        "/CareTeam?date=gt9999-12-31",
        "/CareTeam?date=lt0001-01-01T00:00:00%2B14:00",
        "/CareTeam?_lastUpdated=ge9999",
    ],
)
async def test_dates_at_the_ends_of_the_calendar_are_answered(
    client: httpx.AsyncClient, path: str
) -> None:
    await build(client)
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.json()["resourceType"] in ("Parameters", "Bundle")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("organization=%00", "organization"),
        ("organization=Organization/a%20b", "organization"),
        ("organization=" + "o" * 65, "organization"),
        ("within=-1", "within"),
        ("_count=%C2%B2", "_count"),
        ("_cursor=not-a-cursor", "cursor"),
        ("_pretty=%00", "_pretty"),
    ],
)
async def test_gaps_check_every_parameter_before_the_first_byte(
    client: httpx.AsyncClient, query: str, parameter: str
) -> None:
    await build(client)
    response = await client.get(f"/$accountability-gaps?{query}")
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert parameter in str(outcome), outcome


def _assertion(client_id: str, key: Any, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "jti": str(uuid.uuid4()),
        **overrides,
    }
    return jwt.encode({"alg": "RS384", "kid": key.kid}, claims, key, ["RS384"])


def _form(assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


@pytest.mark.parametrize("case", ["iss", "jti", "jti-too-long", "basic-client-id", "form"])
async def test_token_endpoint_refuses_nul_in_its_own_language(
    app_factory: AppFactory, database_url: str, case: str
) -> None:
    api = await secure_client(app_factory)
    key = rsa_key()
    client_id, _ = await register(database_url, "system/CareTeam.rs", jwks=public_jwks(key))
    headers: dict[str, str] = {}
    if case == "iss":
        data = _form(_assertion(client_id, key, iss=client_id + "\x00"))
    elif case == "jti":
        data = _form(_assertion(client_id, key, jti="once\x00more"))
    elif case == "jti-too-long":
        data = _form(_assertion(client_id, key, jti="j" * 256))
    elif case == "basic-client-id":
        data = {"grant_type": "client_credentials"}
        basic = base64.b64encode(f"{client_id}\x00:secret".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}
    else:
        data = {**_form(_assertion(client_id, key)), "scope": "system/CareTeam.rs\x00"}

    response = await api.post(TOKEN_URL, data=data, headers=headers)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "invalid_request", body
    assert "access_token" not in body


@pytest.mark.parametrize(("depth", "status"), [(30, 201), (31, 400)])
async def test_nesting_is_answered_up_to_the_limit(
    client: httpx.AsyncClient, depth: int, status: int
) -> None:
    """``nested_extensions(30)`` nests objects and arrays 63 deep, one under the limit."""
    response = await client.post("/Patient", json=nested_extensions(depth), headers=FHIR)
    assert response.status_code == status, response.text


async def test_every_json_type_still_passes_when_it_is_the_right_one(
    client: httpx.AsyncClient,
) -> None:
    extension = [
        {"url": f"http://example.org/{kind}", f"value{kind}": value}
        for kind, value in (
            ("Boolean", False),
            ("Integer", -3),
            ("UnsignedInt", 0),
            ("PositiveInt", 7),
            ("Decimal", 1.50),
            ("Decimal", 3),
            ("Date", "2024-02"),
            ("DateTime", "2024-02-29T23:59:60Z"),
            ("Instant", "2024-02-01T10:00:00.123+01:00"),
            ("Time", "10:00:00"),
            ("Uuid", "urn:uuid:9a4c1c52-6a0c-4b59-9d44-6f1f8f2f0d5e"),
            ("Base64Binary", "aGVsbG8="),
            ("Code", "x"),
            ("Uri", "urn:x"),
        )
    ]
    patient = {
        "resourceType": "Patient",
        "active": True,
        "multipleBirthInteger": 2,
        "birthDate": "1980-02-29",
        "deceasedDateTime": "2020-01-01T10:00:00+01:00",
        "photo": [{"contentType": "image/png", "data": "aGVsbG8=", "size": 5}],
        "extension": extension,
    }
    response = await client.post("/Patient", json=patient, headers=FHIR)
    assert response.status_code == 201, response.text


async def test_a_form_search_passes_the_screen(client: httpx.AsyncClient) -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "Okafor"}]}
    assert (await client.post("/Patient", json=patient, headers=FHIR)).status_code == 201
    response = await client.post(
        "/Patient/_search",
        content=b"family=Okafor&_count=5",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["entry"]) == 1


CSV_HEADER = (
    "nhs_number,patient_family,patient_given,birth_date,professional_id,"
    "professional_family,professional_given,profession_snomed,ods_code,organisation_name,"
    "email,phone,keyworking_role,start,end\n"
)


def _csv_row(family: str) -> str:
    return (
        f"9990002002,{family},Grace,1948-02-11,G8234567,Holloway,Ruth,62247001,B86001,"
        "Chapel Allerton Medical Centre,ruth.holloway@nhs.net,0113 496 0201,"
        "accountable-professional,2019-04-01,\n"
    )


async def test_an_assignment_csv_with_a_nul_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/$import-assignments",
        content=(CSV_HEADER + _csv_row("Ade\x00yemi")).encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 400, response.text
    assert "NUL" in response.text


@pytest.mark.parametrize("lenient", [False, True])
async def test_an_assignment_csv_the_csv_reader_cannot_read_imports_nothing(
    client: httpx.AsyncClient, lenient: bool
) -> None:
    """A carriage return inside an unquoted field stops Python's csv reader: no row of the
    file is trusted, skipped bad rows or not."""
    text = CSV_HEADER + _csv_row("Adeyemi") + _csv_row("Ade\ryemi")
    query = "?skipBadRows=true" if lenient else ""
    response = await client.post(
        f"/$import-assignments{query}", content=text.encode(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == (200 if lenient else 422), response.text
    assert "not readable as CSV" in response.text and "line 3" in response.text
    assert (await client.get("/Patient?identifier=9990002002")).json().get("total", 0) == 0


@pytest.mark.parametrize(
    "path", ["/Patient/a%00b", "/Patient/" + "a" * 600, "/Patient/a%0Bb", "/Patient/a%20b"]
)
async def test_a_refused_request_is_audited_without_losing_its_batch(
    app_factory: AppFactory, database_url: str, path: str
) -> None:
    """The refusal is audited like any request, and what the path names cannot stop the
    journal writing it, nor the events queued with it, nor make the event invalid R4 (the
    suite validates the AuditEvent Bundle it reads back)."""
    api = await secure_client(app_factory)
    headers = bearer(await mint(database_url, "system/*.cruds"))
    assert (await api.get(path, headers=headers)).status_code in (400, 404)
    assert (await api.get("/Patient", headers=headers)).status_code == 200
    for _ in range(100):
        events = (await api.get("/AuditEvent", headers=headers)).json().get("entry", [])
        if len(events) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(events) >= 2, events


def test_every_served_type_validates_json_types_strictly() -> None:
    """``json_types.install`` only counts for classes built after it: an import of
    ``fhir.resources`` ahead of ``fhir_mappings.model`` would quietly take ``"true"`` for a
    boolean again, so say so here."""
    from fhir_mappings import json_types, model
    from service.registry import RESOURCE_TYPES

    lax = [name for name in RESOURCE_TYPES if not json_types.installed_for(model.model_class(name))]
    assert lax == []
