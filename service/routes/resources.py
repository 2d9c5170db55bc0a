"""Type- and instance-level interactions, one route per (type, interaction) from the registry.

https://hl7.org/fhir/R4/http.html
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from fhir_mappings.issues import Issue
from service.errors import BadRequest, FhirError, operation_outcome
from service.media import JSON_PATCH, fhir_response, negotiate, read_body, read_resource
from service.openapi_docs import interaction_docs, operation_docs
from service.registry import OPERATIONS, RESOURCE_TYPES, ResourceType
from service.routes.access import require
from service.routes.dependencies import CursorsDep, InteractionsDep, SettingsDep
from service.routes.headers import if_match, read_response, resource_response, version_headers
from service.routes.history import history_response
from service.routes.search import search_response
from service.storage.repository import HistoryQuery
from service.validation import Validation, dry_run, read_request

Handler = Callable[..., Coroutine[Any, Any, Response]]
# What $validate answers as its findings (200, the write's issues); any other refusal (the
# instance unknown or out of reach, the mode not allowed) refuses the request itself.
_FINDINGS = (400, 409, 422)


def _conditional_query(request: Request) -> str:
    query = request.url.query
    if not query:
        raise BadRequest("A conditional interaction needs search criteria in the URL")
    return query


def _with_id(resource_type: str, body: dict[str, Any]) -> dict[str, Any]:
    """A PUT names the resource it writes in its body too (R4 http.html#update)."""
    if body.get("id") is None:
        raise BadRequest(
            "The resource of an update needs its id, the one the URL names",
            expression=(f"{resource_type}.id",),
        )
    return body


def handlers(rtype: str) -> dict[str, tuple[str, str, Handler]]:
    """(method, path, handler) for each interaction of one resource type: the router's, and
    the ones ``service.routes.hot_paths`` calls before the router for the busiest requests."""

    async def read(request: Request, id: str, service: InteractionsDep) -> Response:
        stored = await service.read(rtype, id)
        return read_response(request, stored, service.base_url)

    async def vread(request: Request, id: str, vid: str, service: InteractionsDep) -> Response:
        stored = await service.vread(rtype, id, vid)
        return read_response(request, stored, service.base_url)

    async def create(request: Request, service: InteractionsDep, settings: SettingsDep) -> Response:
        body = await read_resource(request, settings.max_body_bytes)
        outcome = await service.create(
            rtype, body, if_none_exist=request.headers.get("if-none-exist")
        )
        status = 201 if outcome.created else 200
        return resource_response(
            request, outcome.stored, service.base_url, status=status, location=True
        )

    async def update(
        request: Request, id: str, service: InteractionsDep, settings: SettingsDep
    ) -> Response:
        body = _with_id(rtype, await read_resource(request, settings.max_body_bytes))
        outcome = await service.update(rtype, id, body, if_match=if_match(request))
        status = 201 if outcome.created else 200
        return resource_response(
            request, outcome.stored, service.base_url, status=status, location=outcome.created
        )

    async def conditional_update(
        request: Request, service: InteractionsDep, settings: SettingsDep
    ) -> Response:
        query = _conditional_query(request)
        body = await read_resource(request, settings.max_body_bytes)
        outcome = await service.conditional_update(rtype, query, body, if_match=if_match(request))
        status = 201 if outcome.created else 200
        return resource_response(
            request, outcome.stored, service.base_url, status=status, location=True
        )

    async def patch(
        request: Request, id: str, service: InteractionsDep, settings: SettingsDep
    ) -> Response:
        operations = await read_body(request, settings.max_body_bytes, (JSON_PATCH,))
        outcome = await service.patch(rtype, id, operations, if_match=if_match(request))
        return resource_response(request, outcome.stored, service.base_url)

    async def delete(request: Request, id: str, service: InteractionsDep) -> Response:
        stored = await service.delete(rtype, id, if_match=if_match(request))
        headers = version_headers(stored) if stored else {}
        return fhir_response(request, b"", 204, headers)

    async def conditional_delete(request: Request, service: InteractionsDep) -> Response:
        stored = await service.conditional_delete(rtype, _conditional_query(request))
        headers = version_headers(stored) if stored else {}
        return fhir_response(request, b"", 204, headers)

    async def history_instance(
        request: Request,
        id: str,
        service: InteractionsDep,
        settings: SettingsDep,
        cursors: CursorsDep,
    ) -> Response:
        await service.read_any(rtype, id)
        return await history_response(
            request, service, settings, cursors, HistoryQuery(rtype, id, None, None, 0)
        )

    async def history_type(
        request: Request, service: InteractionsDep, settings: SettingsDep, cursors: CursorsDep
    ) -> Response:
        return await history_response(
            request, service, settings, cursors, HistoryQuery(rtype, None, None, None, 0)
        )

    async def search(
        request: Request, service: InteractionsDep, settings: SettingsDep, cursors: CursorsDep
    ) -> Response:
        return await search_response(request, rtype, service, settings, cursors)

    async def validate(
        request: Request, service: InteractionsDep, settings: SettingsDep, id: str | None
    ) -> Response:
        mode = request.query_params.get("mode")
        body = None
        if mode != "delete" or request.headers.get("content-length", "0") != "0":
            body = await read_resource(request, settings.max_body_bytes)
        asked = read_request(rtype, body, mode, instance=id is not None)
        require(request, rtype, asked.mode)  # the modes are named as the SMART actions
        try:
            if asked.mode == "update":
                _with_id(rtype, asked.resource or {})
            await dry_run(service, rtype, id, asked)
        except FhirError as refused:
            if refused.status not in _FINDINGS:
                raise
            return fhir_response(request, orjson.dumps(operation_outcome(refused.issues)))
        return fhir_response(request, orjson.dumps(operation_outcome([_valid(rtype, asked)])))

    async def validate_type(
        request: Request, service: InteractionsDep, settings: SettingsDep
    ) -> Response:
        return await validate(request, service, settings, None)

    async def validate_instance(
        request: Request, id: str, service: InteractionsDep, settings: SettingsDep
    ) -> Response:
        return await validate(request, service, settings, id)

    return {
        "search-type": ("GET", "", search),
        "search-post": ("POST", "/_search", search),
        "read": ("GET", "/{id}", read),
        "vread": ("GET", "/{id}/_history/{vid}", vread),
        "update": ("PUT", "/{id}", update),
        "patch": ("PATCH", "/{id}", patch),
        "delete": ("DELETE", "/{id}", delete),
        "history-instance": ("GET", "/{id}/_history", history_instance),
        "create": ("POST", "", create),
        "conditional-update": ("PUT", "", conditional_update),
        "conditional-delete": ("DELETE", "", conditional_delete),
        "history-type": ("GET", "/_history", history_type),
        "validate": ("POST", "/$validate", validate_type),
        "validate-instance": ("POST", "/{id}/$validate", validate_instance),
    }


def _valid(resource_type: str, asked: Validation) -> Issue:
    return Issue(
        f"No issues: the {asked.mode} of this {resource_type} would be accepted",
        "informational",
        "information",
    )


def _interactions_of(rtype: ResourceType) -> list[str]:
    names = list(rtype.interactions)
    if "search-type" in names:
        names.append("search-post")
    if rtype.conditional_update:
        names.append("conditional-update")
    if rtype.conditional_delete:
        names.append("conditional-delete")
    if f"validate-{rtype.name}" in OPERATIONS:
        names += ["validate", "validate-instance"]
    # Static paths before templated ones, so '/_history' is not taken for an id.
    return sorted(names, key=lambda n: n not in ("history-type", "search-post"))


def _docs(resource_type: str, interaction: str, method: str) -> dict[str, Any]:
    if interaction.startswith("validate"):
        return operation_docs(OPERATIONS[f"validate-{resource_type}"])
    return interaction_docs(interaction, method, resource_type)


def build_router() -> APIRouter:
    router = APIRouter(dependencies=[Depends(negotiate)])
    for rtype in RESOURCE_TYPES.values():
        of_type = handlers(rtype.name)
        for interaction in _interactions_of(rtype):
            if interaction not in of_type:
                continue
            method, path, handler = of_type[interaction]
            router.add_api_route(
                f"/{rtype.name}{path}",
                handler,
                methods=[method],
                operation_id=f"{interaction.replace('-', '_')}_{rtype.name}",
                summary=f"{interaction} {rtype.name}",
                tags=[rtype.name],
                response_class=Response,
                **_docs(rtype.name, interaction, method),
            )
    return router
