"""Definitional resources served read-only: CodeSystem, ValueSet, OperationDefinition and
SearchParameter.

They are data in code (``fhir_mappings.keyworking``, the search-parameter registry), not
stored resources: every process serves the same ones, and they change only with a release.
``GET /fhir/{Type}/{id}`` reads one; ``GET /fhir/{Type}`` is a searchset of all of them,
filterable by ``url``, ``_id`` and ``name``. The CapabilityStatement lists the types and the
operations from here and from the ``OPERATIONS`` registry.
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_mappings.keyworking.terminology import code_systems, value_sets
from service.errors import BadRequest, NotFound
from service.media import fhir_json, fhir_response
from service.registry import OPERATIONS
from service.search.parameters import search_parameter_resources

TYPES = ("CodeSystem", "ValueSet", "OperationDefinition", "SearchParameter")
_FILTERS = ("url", "_id", "name")


@functools.cache
def catalogue() -> dict[str, dict[str, dict[str, Any]]]:
    """Every definitional resource, by type and id."""
    everything = [
        *code_systems(),
        *value_sets(),
        *(op.definition for op in OPERATIONS.values()),
        *search_parameter_resources(),
    ]
    out: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}
    for resource in everything:
        out[resource["resourceType"]][resource["id"]] = resource
    return out


def operation_entries(resource_type: str | None) -> list[dict[str, str]]:
    """CapabilityStatement ``operation`` entries for a type (None: system-level)."""
    return [
        {"name": op.code, "definition": op.canonical}
        for op in OPERATIONS.values()
        if op.resource == resource_type
    ]


def capability_resources() -> list[dict[str, Any]]:
    """CapabilityStatement ``rest.resource`` entries for the definitional types."""
    return [
        {
            "type": name,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{name}",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "versioning": "no-version",
            "searchParam": [
                {"name": "url", "type": "uri"},
                {"name": "name", "type": "string"},
            ],
        }
        for name in TYPES
    ]


def _searchset(request: Request, resource_type: str, base_url: str) -> dict[str, Any]:
    params = request.query_params
    unknown = [k for k in params if not k.startswith("_") and k not in _FILTERS]
    if unknown:
        raise BadRequest(
            f"{resource_type} search supports only url, name and _id, not " + ", ".join(unknown),
            code="not-supported",
        )
    matches = [
        r
        for r in catalogue()[resource_type].values()
        if all(
            params.get(f) is None or str(r.get("id" if f == "_id" else f)) == params[f]
            for f in _FILTERS
        )
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {
                "fullUrl": f"{base_url}/{resource_type}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in matches
        ],
    }


def _routes(router: APIRouter, resource_type: str) -> None:
    async def read(request: Request, id: str) -> Response:
        found = catalogue()[resource_type].get(id)
        if found is None:
            raise NotFound(f"{resource_type}/{id} is not known")
        return fhir_response(request, fhir_json(found))

    async def search(request: Request) -> Response:
        base = request.app.state.settings.fhir_base_url
        return fhir_response(request, fhir_json(_searchset(request, resource_type, base)))

    router.add_api_route(
        f"/{resource_type}/{{id}}",
        read,
        methods=["GET"],
        operation_id=f"read_{resource_type}",
        summary=f"read {resource_type}",
    )
    router.add_api_route(
        f"/{resource_type}",
        search,
        methods=["GET"],
        operation_id=f"search_type_{resource_type}",
        summary=f"search-type {resource_type}",
    )


def build_router() -> APIRouter:
    router = APIRouter(tags=["conformance"])
    for resource_type in TYPES:
        _routes(router, resource_type)
    return router
