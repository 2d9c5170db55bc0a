"""The committed OpenAPI document matches what the code generates, route for route."""

from __future__ import annotations

import json
from typing import Any

from service.cli import DEFAULT_OPENAPI_PATH, openapi_document, render_openapi
from service.conformance import TYPES as DEFINITIONAL_TYPES
from service.media import FHIR_JSON, JSON_PATCH
from service.registry import RESOURCE_TYPES


def test_committed_openapi_is_current() -> None:
    committed = DEFAULT_OPENAPI_PATH.read_text(encoding="utf-8")
    assert committed == render_openapi(), (
        "openapi/openapi.json is out of date: run `make openapi` (keyworker export-openapi)"
    )


def test_every_registered_type_has_its_interactions_documented() -> None:
    paths = openapi_document()["paths"]
    assert isinstance(paths, dict)
    for name, rtype in RESOURCE_TYPES.items():
        writable = "update" in rtype.interactions  # Provenance, AuditEvent: read and search only
        instance = {"get", "put", "patch", "delete"} if writable else {"get"}
        assert set(paths[f"/fhir/{name}/{{id}}"]) == instance
        assert set(paths[f"/fhir/{name}"]) == (
            {"get", "post", "put", "delete"} if writable else {"get"}
        )
        if "history-type" in rtype.interactions:  # not AuditEvent: kept in the audit journal
            assert "get" in paths[f"/fhir/{name}/_history"]
        else:
            assert f"/fhir/{name}/_history" not in paths
    operation_ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert json.dumps(paths)  # serialisable as committed


def _resolved(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """``item``, or what its ``$ref`` (within the document) points at."""
    reference = item.get("$ref")
    if reference is None:
        return item
    found: Any = document
    for step in reference.removeprefix("#/").split("/"):
        found = found[step]
    assert isinstance(found, dict)
    return found


def _body_schema(document: dict[str, Any], operation: dict[str, Any], media: str) -> Any:
    return _resolved(document, operation["requestBody"]["content"][media]["schema"])


def test_writes_describe_the_bodies_they_take() -> None:
    document = openapi_document()
    paths: Any = document["paths"]
    for name, rtype in RESOURCE_TYPES.items():
        if "update" not in rtype.interactions:
            continue
        for path, method in ((f"/fhir/{name}", "post"), (f"/fhir/{name}/{{id}}", "put")):
            schema = _body_schema(document, paths[path][method], "application/fhir+json")
            assert schema["properties"]["resourceType"] == {"type": "string", "enum": [name]}
            assert schema["additionalProperties"] is False
            assert "resourceType" in schema["required"]
            assert {"id", "meta", "extension"} <= set(schema["properties"])
            assert "fhir_comments" not in schema["properties"]
        patch = _body_schema(document, paths[f"/fhir/{name}/{{id}}"]["patch"], JSON_PATCH)
        assert patch["items"]["properties"]["op"]["enum"][:3] == ["add", "remove", "replace"]
    patient = _body_schema(document, paths["/fhir/Patient"]["post"], "application/json")
    assert patient["properties"]["birthDate"] == {"type": "string", "format": "date"}
    bundle = _body_schema(document, paths["/fhir"]["post"], "application/fhir+json")
    assert bundle["properties"]["type"]["enum"] == ["transaction", "batch"]
    handover = _body_schema(document, paths["/fhir/CareTeam/{id}/$handover"]["post"], FHIR_JSON)
    names = handover["properties"]["parameter"]["items"]["properties"]["name"]["enum"]
    assert names == ["role", "from", "to", "date", "reason"]
    assert "text/csv" in paths["/fhir/$import-assignments"]["post"]["requestBody"]["content"]
    search = paths["/fhir/Patient/_search"]["post"]["requestBody"]["content"]
    assert list(search) == ["application/x-www-form-urlencoded"]


def test_every_fhir_route_documents_its_errors_as_operation_outcomes() -> None:
    document = openapi_document()
    paths: Any = document["paths"]
    outcome = document["components"]["schemas"]["OperationOutcome"]  # type: ignore[index]
    assert outcome["properties"]["resourceType"]["enum"] == ["OperationOutcome"]
    definitional = tuple(f"/fhir/{name}" for name in DEFINITIONAL_TYPES)
    routes = [
        (path, method, operation)
        for path, item in paths.items()
        if (path == "/fhir" or path.startswith("/fhir/")) and not path.startswith(definitional)
        if path not in ("/fhir/metadata", "/fhir/.well-known/smart-configuration")
        for method, operation in item.items()
    ]
    assert len(routes) > 60
    for path, method, operation in routes:
        statuses = set(operation["responses"])
        assert {"400", "401", "403", "404", "406", "4XX"} <= statuses, (path, method)
        if "requestBody" in operation:
            assert {"413", "415"} <= statuses, (path, method)
        if method in ("put", "patch", "delete") or (
            "requestBody" in operation and not path.endswith("/_search")
        ):
            assert {"405", "409", "412"} <= statuses, (path, method)
        for status in statuses - {"200", "201", "204"}:
            answer = _resolved(document, operation["responses"][status])
            assert answer["content"]["application/fhir+json"]["schema"] == {
                "$ref": "#/components/schemas/OperationOutcome"
            }, (path, method, status)
    for path in (
        "/fhir/Patient/{id}",
        "/fhir/CareTeam/{id}/_history",
        "/fhir/Patient/{id}/_history/{vid}",
    ):
        assert "410" in paths[path]["get"]["responses"], path
    assert set(paths["/fhir/Patient"]["post"]["responses"]) >= {"201", "422"}
    assert "204" in paths["/fhir/Patient/{id}"]["delete"]["responses"]
