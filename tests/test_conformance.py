"""Definitional resources (CodeSystem, ValueSet, OperationDefinition, SearchParameter) are
served read-only and listed, with the operations, in the CapabilityStatement."""

from __future__ import annotations

import httpx
import pytest

from fhir_mappings import model
from service.conformance import TYPES, catalogue
from service.registry import EVERYTHING, OPERATIONS

CANONICAL = "https://keyworker-fhir.org/fhir"


@pytest.mark.parametrize("resource_type", TYPES)
def test_every_definitional_resource_is_valid_r4(resource_type: str) -> None:
    resources = catalogue()[resource_type]
    assert resources
    for resource in resources.values():
        issues, _ = model.validate(resource_type, resource)
        assert issues == [], (resource["id"], issues)
        assert resource["url"].startswith(CANONICAL)


async def test_read_and_search_definitional_resources(client: httpx.AsyncClient) -> None:
    roles = await client.get("/CodeSystem/keyworking-role")
    assert roles.status_code == 200
    assert roles.headers["content-type"].startswith("application/fhir+json")
    codes = {c["code"] for c in roles.json()["concept"]}
    assert codes >= {
        "accountable-professional",
        "keyworker",
        "co-keyworker",
        "cover-keyworker",
        "case-team-member",
    }
    gaps = await client.get("/CodeSystem/keyworking-gap")
    assert len(gaps.json()["concept"]) == 8
    found = await client.get("/ValueSet", params={"url": f"{CANONICAL}/ValueSet/keyworking-role"})
    assert found.json()["total"] == 1
    snomed = found.json()["entry"][0]["resource"]["compose"]["include"][1]
    assert {c["code"] for c in snomed["concept"]} == {"768820003", "768832004", "405623001"}
    definitions = await client.get("/OperationDefinition")
    codes = {op.code for op in OPERATIONS.values()}
    assert {e["resource"]["code"] for e in definitions.json()["entry"]} == codes
    assert (await client.get("/SearchParameter")).status_code == 200
    assert (await client.get("/CodeSystem/nope")).status_code == 404
    assert (await client.get("/CodeSystem", params={"status": "active"})).status_code == 400
    assert (await client.put("/CodeSystem/keyworking-role", json={})).status_code == 405


async def test_capability_statement_lists_types_and_operations(client: httpx.AsyncClient) -> None:
    rest = (await client.get("/metadata")).json()["rest"][0]
    by_type = {r["type"]: r for r in rest["resource"]}
    for resource_type in TYPES:
        assert [i["code"] for i in by_type[resource_type]["interaction"]] == ["read", "search-type"]
    listed = {
        (r["type"], op["name"], op["definition"])
        for r in rest["resource"]
        for op in r.get("operation", [])
    } | {(None, op["name"], op["definition"]) for op in rest["operation"]}
    r4_own = {("Patient", "everything", EVERYTHING)}  # defined by the R4 specification
    expected = {(op.resource, op.code, op.canonical) for op in OPERATIONS.values()} | r4_own
    assert listed == expected
    for _, _, url in listed - r4_own:
        ident = url.rsplit("/", 1)[1]
        assert (await client.get(f"/OperationDefinition/{ident}")).json()["url"] == url
