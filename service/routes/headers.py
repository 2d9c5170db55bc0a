"""Request and response headers of the FHIR RESTful API: ETag, If-Match, Prefer, Location,
and a read's conditions (If-None-Match, If-Modified-Since) and subsets (_summary, _elements).
"""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fhir_mappings.issues import Issue
from service.errors import BadRequest, operation_outcome
from service.media import fhir_response
from service.search.dates import from_us
from service.search.projection import project
from service.storage.repository import Stored, parse_etag

_READ_SUMMARIES = (None, "true", "text", "data", "false")


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


def read_response(request: Request, stored: Stored, base_url: str) -> Response:
    """A read's (or vread's) answer: 304 when the client's copy is current, the subset
    ``_summary``/``_elements`` ask for, else the stored bytes as they are (only a read with a
    query string or a conditional header looks further than that)."""
    if _not_modified(request, stored):
        return Response(b"", 304, version_headers(stored))
    if request.scope.get("query_string"):
        return fhir_response(
            request, _subset(request, stored.content), 200, version_headers(stored)
        )
    return resource_response(request, stored, base_url)


def _not_modified(request: Request, stored: Stored) -> bool:
    """RFC 9110 13.1.2-3: If-None-Match (weak comparison, ``*`` any) decides; only without it
    does If-Modified-Since, to the second an HTTP date can name."""
    headers = request.headers
    tags = headers.get("if-none-match")
    if tags is not None:
        version = str(stored.version)
        return any(tag.strip() in ("*", stored.etag, f'"{version}"') for tag in tags.split(","))
    since = headers.get("if-modified-since")
    if since is None:
        return False
    try:
        moment = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False  # RFC 9110 13.1.3: an invalid date is ignored
    if moment.tzinfo is None:
        return False
    return stored.last_updated // 1_000_000 <= int(moment.timestamp())


def _subset(request: Request, content: bytes) -> bytes:
    params = request.query_params
    summary = params.get("_summary")
    if summary not in _READ_SUMMARIES:
        raise BadRequest(
            f"_summary '{summary}' on a read is true, text, data or false (count is for searches)",
            code="value",
            expression=("_summary",),
        )
    elements = tuple(
        name.strip()
        for raw in params.getlist("_elements")
        for name in raw.split(",")
        if name.strip()
    )
    return project(content, None if summary == "false" else summary, elements)
