"""``$validate`` on a type and an instance: the write's every check (model, references,
keyworking rules, reach), nothing written, an OperationOutcome answered; listed in the
CapabilityStatement and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from service.cli import openapi_document
from tests.authkit import bearer, mint, secure_client
from tests.keyworking_world import build, care_team, ok, participant

StateFn = Callable[[], Awaitable[dict[str, int]]]
AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
_ACCOUNTABLE = participant("accountable-professional", "PractitionerRole/r-gp")


def _parameters(resource: dict[str, Any] | None, mode: str | None) -> dict[str, Any]:
    parameter: list[dict[str, Any]] = []
    if resource is not None:
        parameter.append({"name": "resource", "resource": resource})
    if mode is not None:
        parameter.append({"name": "mode", "valueCode": mode})
    return {"resourceType": "Parameters", "parameter": parameter}


def _valid(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["severity"] for i in outcome["issue"]] == ["information"]


def _findings(response: httpx.Response, code: str, expression: str) -> None:
    assert response.status_code == 200, response.text
    issues = response.json()["issue"]
    assert any(
        i["severity"] == "error" and i["code"] == code and expression in i.get("expression", [])
        for i in issues
    ), issues


async def test_validate_on_the_type_checks_a_create_and_writes_nothing(
    client: httpx.AsyncClient, db_state: StateFn
) -> None:
    await build(client)
    before = await db_state()
    team = care_team([_ACCOUNTABLE])
    _valid(await client.post("/CareTeam/$validate", json=team))
    _valid(await client.post("/CareTeam/$validate", json=_parameters(team, "create")))
    bad_model = {**team, "status": "sometimes"}
    _findings(
        await client.post("/CareTeam/$validate", json=bad_model), "code-invalid", "CareTeam.status"
    )
    dangling = care_team([_ACCOUNTABLE], "Patient/nobody")
    response = await client.post("/CareTeam/$validate", json=dangling)
    assert response.status_code == 200, response.text
    assert response.json()["issue"][0]["severity"] == "error"
    two_accountable = care_team(
        [_ACCOUNTABLE, participant("accountable-professional", "PractitionerRole/r-gp2")]
    )
    response = await client.post("/CareTeam/$validate", json=two_accountable)
    _findings(response, "business-rule", "CareTeam.participant[1]")
    assert response.json()["issue"][0]["diagnostics"].startswith("Rule single-accountable:")
    _valid(await client.post("/Patient/$validate", json={"resourceType": "Patient"}))
    assert await db_state() == before


async def test_validate_on_an_instance_checks_an_update_or_a_delete(
    client: httpx.AsyncClient, db_state: StateFn
) -> None:
    await build(client)
    await ok(client, care_team([_ACCOUNTABLE]), "ct-1")
    before = await db_state()
    team = {**care_team([_ACCOUNTABLE]), "id": "ct-1", "name": "Renamed"}
    _valid(await client.post("/CareTeam/ct-1/$validate", json=team))
    _valid(await client.post("/CareTeam/ct-1/$validate", json=_parameters(team, "update")))
    _valid(await client.post("/CareTeam/ct-1/$validate", json=_parameters(None, "delete")))
    _valid(await client.post("/CareTeam/ct-1/$validate", params={"mode": "delete"}))
    no_id = {**team}
    del no_id["id"]
    _findings(await client.post("/CareTeam/ct-1/$validate", json=no_id), "invalid", "CareTeam.id")
    other_id = {**team, "id": "ct-2"}
    _findings(
        await client.post("/CareTeam/ct-1/$validate", json=other_id), "invalid", "CareTeam.id"
    )
    gone = await client.post("/CareTeam/nobody/$validate", json=_parameters(None, "delete"))
    assert gone.status_code == 404, gone.text
    assert await db_state() == before
    assert (await client.get("/CareTeam/ct-1")).json()["meta"]["versionId"] == "1"


@pytest.mark.parametrize(
    ("path", "body", "expression"),
    [
        ("/CareTeam/$validate", _parameters(None, "create"), "resource"),
        ("/CareTeam/$validate", _parameters({"resourceType": "CareTeam"}, "sideways"), "mode"),
        ("/CareTeam/$validate", _parameters({"resourceType": "CareTeam"}, "update"), None),
        (
            "/CareTeam/$validate",
            {"resourceType": "Parameters", "parameter": [{"name": "x"}]},
            "Parameters.parameter[0]",
        ),
    ],
    ids=["no-resource", "unknown-mode", "update-on-type", "unknown-parameter"],
)
async def test_a_request_validate_cannot_run_is_400(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], expression: str | None
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    if expression is not None:
        assert issue["expression"] == [expression]


async def test_validate_needs_the_rights_of_its_mode(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await secure_client(app_factory)
    reader = bearer(await mint(database_url, "system/Patient.rs"))
    refused = await client.post(
        "/Patient/$validate", json={"resourceType": "Patient"}, headers=reader
    )
    assert refused.status_code == 403, refused.text
    writer = bearer(await mint(database_url, "system/Patient.c"))
    _valid(
        await client.post("/Patient/$validate", json={"resourceType": "Patient"}, headers=writer)
    )


async def test_validate_is_listed_in_the_capability_statement_and_openapi(
    client: httpx.AsyncClient,
) -> None:
    rest = (await client.get("/metadata")).json()["rest"][0]
    by_type = {r["type"]: r for r in rest["resource"]}
    for resource_type in ("CareTeam", "CarePlan", "Patient"):
        names = [op["name"] for op in by_type[resource_type]["operation"]]
        assert names.count("validate") == 1, names
    assert "validate" not in [op["name"] for op in by_type["AuditEvent"].get("operation", [])]
    definition = await client.get("/OperationDefinition/Resource-validate")
    assert definition.status_code == 200
    assert definition.json()["type"] is True
    assert definition.json()["instance"] is True
    paths = openapi_document()["paths"]
    assert isinstance(paths, dict)
    assert "post" in paths["/fhir/CareTeam/$validate"]
    assert "post" in paths["/fhir/CareTeam/{id}/$validate"]
