"""The committed OpenAPI document matches what the code generates, route for route."""

from __future__ import annotations

import json

from service.cli import DEFAULT_OPENAPI_PATH, openapi_document, render_openapi
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
