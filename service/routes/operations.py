"""The keyworking operations over HTTP, one route per entry of the ``OPERATIONS`` registry.

Translation only: query and body in, ``service.keyworking.answers`` called, FHIR JSON out.
Each operation's access needs come from the registry; a ``patient/`` token may ask
``$accountable`` about its own patient and nothing else here. An instance-level operation
reads its instance as a read does (``check_record``): one out of the token's reach is 404.
https://hl7.org/fhir/R4/operations.html
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from service.assignment_import import import_assignments as run_assignment_import
from service.audit.middleware import about_patients
from service.auth.access import Access, current_access
from service.errors import BadRequest, Forbidden, operation_outcome
from service.keyworking.answers import Keyworking, instant_param
from service.media import fhir_json, fhir_response, read_body, read_bytes, response_media_type
from service.openapi_docs import operation_docs
from service.paging import Cursors
from service.registry import OPERATIONS, Operation
from service.routes.access import check_record, require
from service.routes.dependencies import CursorsDep, SettingsDep
from service.routes.headers import resource_response
from service.search.controls import whole_number

Handler = Callable[..., Coroutine[Any, Any, Response]]
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


async def _keyworking(request: Request) -> Keyworking:
    keyworking: Keyworking = request.app.state.keyworking
    return keyworking


KeyworkingDep = Annotated[Keyworking, Depends(_keyworking)]


def _access(request: Request) -> Access:
    access = getattr(request.state, "access", None)
    return access if isinstance(access, Access) else current_access.get()


def _require(
    request: Request, operation: Operation, *, confinable: bool = False, instance: str = ""
) -> str | None:
    """Every (type, action) the operation needs, unrestricted (else 403).

    ``confinable``: an operation about one patient may also run for a token confined to its
    patient and nothing more; the answer is that patient's reference, which the operation
    must answer about alone. ``instance``: reading the instance is checked as a read
    (``_require_instance``) instead.
    """
    access = _access(request)
    confined = None
    for resource_type, action in operation.requires:
        if instance and (resource_type, action) == (operation.resource, "read"):
            continue
        alternatives = access.alternatives(resource_type, action)
        if () in alternatives:
            continue
        compartment = access.compartment(resource_type)
        if confinable and compartment is not None and alternatives == [(compartment,)]:
            confined = f"Patient/{access.patient}"
            continue
        raise Forbidden(
            f"${operation.code} needs {action} on {resource_type} without restriction"
            + (" or for the token's patient alone" if confinable else "")
        )
    return confined


async def _require_instance(request: Request, operation: Operation, instance: str) -> None:
    """``_require``, and the instance read as a read is: 404 when out of the token's reach."""
    _require(request, operation, instance=instance)
    resource_type = str(operation.resource)
    access = require(request, resource_type, "read")
    await check_record(request, access, resource_type, instance)


def _int_param(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    number = whole_number(name, value, digits=18)
    return min(number, maximum) if maximum is not None else number


async def accountable(request: Request, keyworking: KeyworkingDep) -> Response:
    patient = request.query_params.get("patient")
    if not patient:
        raise BadRequest("$accountable needs 'patient' (Patient/id, id or system|value)")
    confined = _require(request, OPERATIONS["accountable"], confinable=True)
    at = instant_param(request.query_params.get("date"), keyworking.now())
    answer = await keyworking.accountable(patient, at, confined_to=confined)
    # The answer's first parameter is the person: a Patient's reference, or the identifier
    # asked about when no Patient carries it.
    person: str | None = answer["parameter"][0]["valueReference"].get("reference")
    patient = person.removeprefix("Patient/") if person is not None else ""
    about_patients(request, [patient] if patient != person else [])
    return fhir_response(request, fhir_json(answer))


async def handover(
    request: Request, id: str, keyworking: KeyworkingDep, settings: SettingsDep
) -> Response:
    await _require_instance(request, OPERATIONS["handover"], id)
    body = await read_body(
        request, settings.max_body_bytes, ("application/fhir+json", "application/json")
    )
    outcome = await keyworking.handover(id, body)
    return resource_response(request, outcome.stored, keyworking.interactions.base_url)


async def accountability_gaps(
    request: Request, keyworking: KeyworkingDep, settings: SettingsDep, cursors: CursorsDep
) -> Response:
    _require(request, OPERATIONS["accountability-gaps"])
    organization = _organization_param(request.query_params.get("organization"))
    within = _int_param(request, "within", settings.gaps_within_days)
    count = _int_param(request, "_count", settings.default_page_size, settings.gaps_max_count)
    after = None
    cursor = request.query_params.get("_cursor")
    if cursor is not None:
        position = cursors.decode(cursor)
        after = (str(position["patient"]), int(position["shown"]))
    page = keyworking.gap_page(
        organization=organization, within_days=within, count=count, after=after
    )
    indent = orjson.OPT_INDENT_2 if request.query_params.get("_pretty") == "true" else 0

    async def bundle() -> AsyncIterator[bytes]:
        """The searchset Bundle, written as the issues are found; ``link`` comes last because
        only the end of the page knows whether there is a next one."""
        yield b'{"resourceType":"Bundle","type":"searchset"'
        separator = b',"entry":['
        async for batch in page.batches:
            if batch:
                yield separator + b",".join(
                    fhir_json(_entry(issue), option=indent) for issue in batch
                )
                separator = b","
        links = orjson.dumps(_links(request, keyworking, cursors, page.after))
        yield (b"]" if separator == b"," else b"") + b',"link":' + links + b"}"

    media = f"{response_media_type(request)}; charset=utf-8"
    return StreamingResponse(bundle(), media_type=media)


def _organization_param(value: str | None) -> str | None:
    """``Organization/id`` from an id or a reference; 400 before the streamed answer starts
    for anything else, which could only ever match nobody."""
    if value is None:
        return None
    organization_id = value.removeprefix("Organization/")
    if not _FHIR_ID.fullmatch(organization_id):
        raise BadRequest(
            f"'organization' ({value[:80]}) is not an Organization id or Organization/id",
            code="value",
            expression=("organization",),
        )
    return f"Organization/{organization_id}"


def _entry(issue: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{issue['id']}", "resource": issue, "search": {"mode": "match"}}


def _links(
    request: Request, keyworking: Keyworking, cursors: Cursors, after: tuple[str, int] | None
) -> list[dict[str, str]]:
    url = f"{keyworking.interactions.base_url}/$accountability-gaps"
    keep = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
    links = [{"relation": "self", "url": f"{url}?{urlencode(keep)}" if keep else url}]
    if after is not None:
        token = cursors.encode({"patient": after[0], "shown": after[1]})
        links.append({"relation": "next", "url": f"{url}?{urlencode([*keep, ('_cursor', token)])}"})
    return links


async def caseload(request: Request, id: str, keyworking: KeyworkingDep) -> Response:
    await _require_instance(request, OPERATIONS["caseload"], id)
    at = instant_param(request.query_params.get("date"), keyworking.now())
    return fhir_response(request, fhir_json(await keyworking.caseload(id, at)))


async def import_assignments(
    request: Request, keyworking: KeyworkingDep, settings: SettingsDep
) -> Response:
    _require(request, OPERATIONS["import-assignments"])
    raw = await read_bytes(request, settings.max_body_bytes, ("text/csv",))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest("The CSV file is not UTF-8 text", code="structure") from error
    skip = request.query_params.get("skipBadRows", "false")
    if skip not in ("true", "false"):
        raise BadRequest("'skipBadRows' is true or false", code="value")
    report = await run_assignment_import(
        keyworking.interactions,
        text,
        skip_bad_rows=skip == "true",
        max_entries=settings.max_bundle_entries,
    )
    return fhir_response(request, fhir_json(operation_outcome(report.issues())))


_HANDLERS: dict[str, Handler] = {
    "accountable": accountable,
    "handover": handover,
    "accountability-gaps": accountability_gaps,
    "caseload": caseload,
    "import-assignments": import_assignments,
}


def build_router() -> APIRouter:
    """Routes for every registered operation; include it before the ``{id}`` routes."""
    router = APIRouter(tags=["operations"])
    for operation in OPERATIONS.values():
        if operation.code == "validate":
            continue  # served by each type's own routes (service.routes.resources)
        router.add_api_route(
            operation.path,
            _HANDLERS[operation.code],
            methods=[operation.method],
            operation_id=f"op_{operation.code.replace('-', '_')}",
            summary=f"${operation.code}",
            description=str(operation.definition["description"]),
            **operation_docs(operation),
        )
    return router
