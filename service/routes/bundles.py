"""``POST [base]`` with a transaction or batch Bundle. https://hl7.org/fhir/R4/http.html#transaction"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from service.auth.access import FULL_ACCESS, Access
from service.bundle_entries import Entry, read_bundle
from service.bundles import response_bundle
from service.errors import Forbidden
from service.media import fhir_response, read_resource
from service.openapi_docs import interaction_docs
from service.routes.access import ACTION_OF
from service.routes.dependencies import InteractionsDep, SettingsDep
from service.transactions import BundleProcessor

router = APIRouter()


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
        if action == "read" and () not in access.alternatives(entry.resource_type, "read"):
            # Restricted (patient/, ?category=) reads are checked record by record on the
            # plain read route; inside a bundle they are refused rather than half-checked.
            raise Forbidden(
                "a restricted token reads records with plain GET requests, not in bundles",
                expression=(f"Bundle.entry[{entry.index}].request",),
            )

    return check


@router.post("/", include_in_schema=False)
@router.post(
    "",
    operation_id="transaction_or_batch",
    summary="transaction / batch",
    tags=["system"],
    **interaction_docs("transaction", "POST"),
)
async def transaction_or_batch(
    request: Request, service: InteractionsDep, settings: SettingsDep
) -> Response:
    body = await read_resource(request, settings.max_body_bytes)
    kind, entries = read_bundle(body, settings.max_bundle_entries)
    access: Access = getattr(request.state, "access", FULL_ACCESS)
    processor = BundleProcessor(service, _scope_check(access))
    if kind == "transaction":
        results = await processor.transaction(entries)
    else:
        results = await processor.batch(entries)
    minimal = "return=minimal" in request.headers.get("prefer", "")
    content = response_bundle(
        kind,
        [(r.status, r.stored, r.outcome) for r in results],
        service.base_url,
        minimal=minimal,
        moment=service.clock(),
    )
    return fhir_response(request, content)
