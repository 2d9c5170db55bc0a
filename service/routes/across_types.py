"""Searches wider than one type's URL: the patient compartment (``Patient/{id}/{type}``),
system search (``GET /fhir?_type=...``) and ``Patient/{id}/$everything``.

Each is built from the same criteria a type search uses (``service.search.criteria``), so
each branch is planned with the caller's reach (``service.auth.reach``) like any search: a
patient's token finds only its own compartment, and a patient out of its reach is 404, as a
read of it would be. https://hl7.org/fhir/R4/search.html#compartments,
https://hl7.org/fhir/R4/http.html#search and https://hl7.org/fhir/R4/patient-operation-everything.html
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from service.errors import BadRequest, Forbidden
from service.interactions import Interactions
from service.media import negotiate
from service.openapi_docs import interaction_docs
from service.registry import EVERYTHING_REFERENCED, PATIENT_COMPARTMENT, RESOURCE_TYPES
from service.routes.access import check_record
from service.routes.dependencies import CursorsDep, InteractionsDep, SettingsDep
from service.routes.search import (
    access_of,
    across_types,
    applied,
    controls_of,
    limits,
    search_pairs,
    search_response,
    unsupported,
)
from service.search.criteria import (
    Criteria,
    Criterion,
    in_compartment,
    parse,
    pointed_at_by,
    split_values,
)
from service.search.parameters import JOURNALED_TYPES, SEARCH_PARAMETERS, SearchParam

Handler = Callable[..., Coroutine[Any, Any, Response]]
# What $everything reads besides its paging: R4's _since (changed since) and _count.
_EVERYTHING_PARAMETERS = ("_since", "_count", "_cursor", "_format", "_pretty")
# Result parameters that need a single type (their parameters are a type's).
_SINGLE_TYPE = ("_include", "_include:iterate", "_revinclude", "_revinclude:iterate")


async def _patient_in_reach(request: Request, service: Interactions, patient_id: str) -> None:
    """404 for a patient that does not exist or lies out of the caller's reach (410 for a
    deleted one), as its read would answer; a caller that may not read patients learns
    nothing either way, and its searches are confined by its reach all the same."""
    access = access_of(request)
    if access.allows("Patient", "read"):
        await check_record(request, access, "Patient", patient_id)
        await service.read("Patient", patient_id)


def _compartment_search(resource_type: str) -> Handler:
    names = PATIENT_COMPARTMENT[resource_type]

    async def search(
        request: Request,
        id: str,
        service: InteractionsDep,
        settings: SettingsDep,
        cursors: CursorsDep,
    ) -> Response:
        request.state.interaction = "search-type"
        await _patient_in_reach(request, service, id)
        return await search_response(
            request,
            resource_type,
            service,
            settings,
            cursors,
            within=(in_compartment(resource_type, names, id),),
            url=f"{service.base_url}/Patient/{id}/{resource_type}",
        )

    return search


def _system_types(request: Request, pairs: Sequence[tuple[str, str]]) -> list[str]:
    """The types ``_type`` names (each one the caller may search), or every type the
    caller may search; AuditEvents, kept in the audit journal, are searched on their own."""
    access = access_of(request)
    named = [t for k, v in pairs if k == "_type" for t in split_values(v)]
    if not named:
        return [
            t for t in SEARCH_PARAMETERS if t not in JOURNALED_TYPES and access.allows(t, "search")
        ]
    for name in named:
        if name in JOURNALED_TYPES:
            raise BadRequest(
                f"_type: {name} is kept in the audit journal; search /{name} on its own",
                code="not-supported",
                expression=("_type",),
            )
        if name not in SEARCH_PARAMETERS:
            raise BadRequest(
                f"_type: '{name}' is not a type this server searches",
                code="not-supported",
                expression=("_type",),
            )
        if not access.allows(name, "search"):
            raise Forbidden(f"This access token does not allow searching {name}")
    return list(dict.fromkeys(named))


async def system_search(
    request: Request, service: InteractionsDep, settings: SettingsDep, cursors: CursorsDep
) -> Response:
    """Every type in ``_type`` (or every type), by the parameters all of them know."""
    request.state.interaction = "search-system"
    pairs = await search_pairs(request)
    types = _system_types(request, pairs)
    asked = [(k, v) for k, v in pairs if k != "_type"]
    unknown = [name for t in types for name in parse(t, asked, limits(settings)).unknown]
    unknown += [k for k, _ in asked if k in _SINGLE_TYPE]
    ignored = unsupported(unknown, asked)
    keep, issues = applied(request, pairs, ignored)
    kept = [(k, v) for k, v in asked if k not in ignored]
    pieces = [parse(t, kept, limits(settings)) for t in types]
    return await across_types(
        request,
        service,
        settings,
        cursors,
        url=service.base_url,
        pieces=pieces,
        pairs=pairs,
        controls=controls_of("", kept, settings),
        keep=keep,
        issues=issues,
    )


def _everything_pieces(patient_id: str, since: Sequence[Criterion]) -> list[Criteria]:
    """The patient, each record in its compartment (but the journaled AuditEvents), the
    resources of the ``EVERYTHING_REFERENCED`` types the patient or a record of its care (the
    types clients write) refers to, and the practitioner and organisation of each
    PractitionerRole among them (a keyworker is named by role)."""
    compartment = {"Patient": (), **PATIENT_COMPARTMENT}
    members = {
        t: in_compartment(t, names, patient_id)
        for t, names in compartment.items()
        if t not in JOURNALED_TYPES
    }
    referrers = [
        (t, member) for t, member in members.items() if RESOURCE_TYPES[t].supports("create")
    ]
    referenced = [
        (target, pointed_at_by(source, param, member))
        for target in EVERYTHING_REFERENCED
        for source, member in referrers
        for param in _references(source, target)
    ]
    roles = [
        ("PractitionerRole", role) for target, role in referenced if target == "PractitionerRole"
    ]
    of_roles = [
        (target, pointed_at_by(source, param, role))
        for target in EVERYTHING_REFERENCED
        for source, role in roles
        for param in _references(source, target)
    ]
    return [
        *(Criteria(t, [member, *since]) for t, member in members.items()),
        *(Criteria(target, [found, *since]) for target, found in (*referenced, *of_roles)),
    ]


def _references(source: str, target: str) -> list[SearchParam]:
    """The reference parameters of ``source`` that name ``target`` among their targets."""
    return [p for p in SEARCH_PARAMETERS[source] if p.type == "reference" and target in p.targets]


async def everything(
    request: Request,
    id: str,
    service: InteractionsDep,
    settings: SettingsDep,
    cursors: CursorsDep,
) -> Response:
    """``Patient/{id}/$everything``: one searchset, paged like any search."""
    request.state.interaction = "operation"
    await _patient_in_reach(request, service, id)
    pairs = await search_pairs(request)
    ignored = [*dict.fromkeys(k for k, _ in pairs if k not in _EVERYTHING_PARAMETERS)]
    keep, issues = applied(request, pairs, ignored)
    since_values = [v for k, v in pairs if k == "_since"]
    since = (
        parse("Patient", [("_lastUpdated", f"ge{v}") for v in since_values]).criteria
        if since_values
        else []
    )
    return await across_types(
        request,
        service,
        settings,
        cursors,
        url=f"{service.base_url}/Patient/{id}/$everything",
        pieces=_everything_pieces(id, since),
        pairs=pairs,
        controls=controls_of("", [(k, v) for k, v in pairs if k == "_count"], settings),
        keep=keep,
        issues=issues,
    )


def build_router() -> APIRouter:
    """Include it before the type routes: ``Patient/{id}/CareTeam`` must not be taken for
    anything else."""
    router = APIRouter(dependencies=[Depends(negotiate)])
    for resource_type in PATIENT_COMPARTMENT:
        router.add_api_route(
            f"/Patient/{{id}}/{resource_type}",
            _compartment_search(resource_type),
            methods=["GET"],
            operation_id=f"compartment_search_{resource_type}",
            summary=f"search {resource_type} in a patient's compartment",
            tags=[resource_type],
            response_class=Response,
            **interaction_docs("read", "GET"),  # 404 or 410 for the patient, as its read
        )
    router.add_api_route(
        "/Patient/{id}/$everything",
        everything,
        methods=["GET"],
        operation_id="op_everything",
        summary="$everything",
        description="The patient, every record in its compartment and the practitioners, "
        "roles and organisations they refer to, as a paged searchset",
        tags=["Patient"],
        response_class=Response,
        **interaction_docs("read", "GET"),
    )
    # The base with and without its trailing slash, as clients write it; and POST _search.
    for name, method, path, interaction in (
        ("get", "GET", "", "search-type"),
        ("get_slash", "GET", "/", "search-type"),
        ("post", "POST", "/_search", "search-post"),
    ):
        router.add_api_route(
            path,
            system_search,
            methods=[method],
            operation_id=f"search_system_{name}",
            summary="search-system",
            tags=["system"],
            response_class=Response,
            **interaction_docs(interaction, method),
        )
    return router
