"""Request and response headers of the FHIR RESTful API: ETag, If-Match, Prefer, Location."""

from __future__ import annotations

from email.utils import format_datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fhir_mappings.issues import Issue
from service.errors import operation_outcome
from service.media import fhir_response
from service.search.dates import from_us
from service.storage.repository import Stored, parse_etag


def if_match(request: Request) -> int | None:
    value = request.headers.get("if-match")
    if value is None:
        return None
    return parse_etag(value)


def version_headers(stored: Stored) -> dict[str, str]:
    return {
        "ETag": stored.etag,
        "Last-Modified": format_datetime(from_us(stored.last_updated), usegmt=True),
    }


def resource_response(
    request: Request, stored: Stored, base_url: str, *, status: int = 200, location: bool = False
) -> Response:
    """A write's or read's answer, shaped by ``Prefer: return=``."""
    headers = version_headers(stored)
    if location:
        headers["Location"] = f"{base_url}/{stored.reference}/_history/{stored.version}"
    # Only a write's answer can be shaped, so a read (the busiest path) never looks up Prefer.
    prefer = "" if request.method == "GET" else request.headers.get("prefer", "")
    if "return=minimal" in prefer:
        return fhir_response(request, b"", status, headers)
    if "return=OperationOutcome" in prefer:
        outcome = operation_outcome(
            [
                Issue(
                    f"{stored.reference} is at version {stored.version}",
                    "informational",
                    "information",
                )
            ]
        )
        return fhir_response(request, orjson.dumps(outcome), status, headers)
    return fhir_response(request, stored.content, status, headers)
