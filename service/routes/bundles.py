"""``POST [base]`` with a transaction or batch Bundle. https://hl7.org/fhir/R4/http.html#transaction

Each entry is held to what its plain request would be: the token's scopes (``_scope_check``),
a read's record within the token's reach (``check_record``: 404 in the entry when it is not),
a search run as the plain search (``search_response``, with the caller's access), its
searchset Bundle the entry's resource.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from service.auth.access import FULL_ACCESS, Access
from service.bundle_entries import Entry, read_bundle
from service.bundles import response_bundle
from service.errors import Forbidden
from service.media import fhir_response, read_resource
from service.openapi_docs import interaction_docs
from service.routes.access import ACTION_OF, check_record
from service.routes.dependencies import CursorsDep, InteractionsDep, SettingsDep
from service.routes.search import search_response
from service.transactions import BundleProcessor

router = APIRouter()
# The caller's request headers a search entry is run with (how lenient its parameters are).
_SEARCH_HEADERS = (b"prefer",)


def _scope_check(access: Access) -> Callable[[Entry], None]:
    """Refuse an entry whose type and action the token does not cover (403), the action
    that of the entry's interaction, as on the plain route."""

    def check(entry: Entry) -> None:
        action = ACTION_OF[entry.interaction]
        if not access.allows(entry.resource_type, action):
            raise Forbidden(
                f"the token does not allow {action} on {entry.resource_type}",
                expression=(f"Bundle.entry[{entry.index}].request",),
            )

    return check


def _reach(request: Request, access: Access) -> Callable[[Entry], Awaitable[None]]:
    """A read entry's record checked as the plain read's is (it reads committed records: in
    a transaction, a restricted token cannot read one the same Bundle writes)."""

    async def check(entry: Entry) -> None:
        await check_record(request, access, entry.resource_type, entry.resource_id or "")

    return check


def _searches(
    request: Request, service: InteractionsDep, settings: SettingsDep, cursors: CursorsDep
) -> Callable[[Entry], Awaitable[bytes]]:
    """A search entry run as ``GET [base]/[type]?[query]`` by the same caller."""

    async def search(entry: Entry) -> bytes:
        scope = {
            **request.scope,
            "method": "GET",
            "path": f"/fhir/{entry.resource_type}",
            "raw_path": f"/fhir/{entry.resource_type}".encode(),
            "query_string": (entry.query or "").encode(),
            "headers": [h for h in request.scope["headers"] if h[0] in _SEARCH_HEADERS],
            "state": {"access": getattr(request.state, "access", FULL_ACCESS)},
        }
        answer = await search_response(
            Request(scope), entry.resource_type, service, settings, cursors
        )
        return bytes(answer.body)

    return search


@router.post("/", include_in_schema=False)
@router.post(
    "",
    operation_id="transaction_or_batch",
    summary="transaction / batch",
    tags=["system"],
    **interaction_docs("transaction", "POST"),
)
async def transaction_or_batch(
    request: Request, service: InteractionsDep, settings: SettingsDep, cursors: CursorsDep
) -> Response:
    body = await read_resource(request, settings.max_body_bytes)
    kind, entries = read_bundle(body, settings.max_bundle_entries)
    access: Access = getattr(request.state, "access", FULL_ACCESS)
    processor = BundleProcessor(
        service,
        _scope_check(access),
        reach=_reach(request, access),
        search=_searches(request, service, settings, cursors),
    )
    if kind == "transaction":
        results = await processor.transaction(entries)
    else:
        results = await processor.batch(entries)
    minimal = "return=minimal" in request.headers.get("prefer", "")
    content = response_bundle(
        kind,
        [(r.status, r.stored, r.outcome, r.found) for r in results],
        service.base_url,
        minimal=minimal,
        moment=service.clock(),
    )
    return fhir_response(request, content)
