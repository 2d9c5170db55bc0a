"""FHIR's JSON wire format on HTTP: content negotiation, request bodies and responses.

Only JSON is served (``application/fhir+json``, ``application/json``, and DSTU2's
``application/json+fhir``, which older clients still send and expect back); ``_format`` and
``Accept`` asking for anything else get 406. Responses carry stored bytes as they are;
``_pretty=true`` is the one case that re-indents them. Every answer built rather than stored
is serialised by ``fhir_json``, which leaves out the empty arrays and objects R4 JSON forbids
(``fhir_mappings.empty_elements``); stored resources were cleared of them on write.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from fhir_mappings.empty_elements import without_empty
from fhir_mappings.issues import Issue
from service.errors import (
    BadRequest,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
    operation_outcome,
)
from service.json_screen import JsonLimits, screen_json

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
_JSON_TYPES = (FHIR_JSON, "application/json", "application/json+fhir")
_FORMAT_ALIASES = {"json": FHIR_JSON, **{media: media for media in _JSON_TYPES}}


def fhir_json(value: Any, *, option: int = 0) -> bytes:
    """An answer the service builds (a Bundle, Parameters, a definition...) as FHIR JSON: no
    empty array, object or string anywhere, however it was assembled. Stored resources
    spliced in as ``orjson.Fragment`` are written as they are: the walk's cost is the
    answer's own objects, whatever the size of the resources in it."""
    return orjson.dumps(without_empty(value, strings=True), option=option)


def outcome_response(status: int, issues: list[Issue], headers: dict[str, str]) -> Response:
    """An OperationOutcome answer; always JSON, since it may be refusing the client's format."""
    return Response(
        fhir_json(operation_outcome(issues)),
        status,
        headers,
        media_type=f"{FHIR_JSON}; charset=utf-8",
    )


def response_media_type(request: Request) -> str:
    """The JSON media type to answer with, or 406 when the client wants another format."""
    # Most requests carry no _format: the query string is only parsed when it might (also
    # spelled %5Fformat).
    has_format = b"format" in request.scope.get("query_string", b"")
    requested = request.query_params.get("_format") if has_format else None
    return _negotiated(requested, request.headers.get("accept", ""))


@lru_cache(maxsize=256)
def _negotiated(requested: str | None, accept: str) -> str:
    """Clients send the same few Accept headers again and again: each is parsed once."""
    if requested is not None:
        media = _FORMAT_ALIASES.get(requested.split(";")[0].strip().lower())
        if media is None:
            raise NotAcceptable(f"_format '{requested}' is not supported; this server speaks JSON")
        return media
    if not accept:
        return FHIR_JSON
    offered = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for media in offered:
        if media in _JSON_TYPES:
            return media
        if media in ("*/*", "application/*", "") or media.endswith("+json"):
            return FHIR_JSON
    raise NotAcceptable(f"Accept '{accept}' names no format this server speaks (JSON)")


async def negotiate(request: Request) -> None:
    """Route dependency: refuse an unservable format (406) before the handler runs.

    ``fhir_response`` negotiates again when answering, but by then a write has been
    committed; checking first means a 406 never hides a change the client did not see.
    """
    response_media_type(request)


def fhir_response(
    request: Request,
    content: bytes,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    media = response_media_type(request)
    if content and request.query_params.get("_pretty") == "true":
        content = orjson.dumps(orjson.loads(content), option=orjson.OPT_INDENT_2)
    return Response(content, status, headers, media_type=f"{media}; charset=utf-8")


async def read_bytes(request: Request, max_bytes: int, accepted: tuple[str, ...]) -> bytes:
    """The raw body, refusing other media types (415), bodies over the limit (413) and a NUL
    byte (400), which no FHIR value and no PostgreSQL text may hold (a CSV file's, say)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in accepted:
        raise UnsupportedMediaType(
            f"Content-Type '{media or '(none)'}' is not accepted here; use {' or '.join(accepted)}"
        )
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > max_bytes
    ):
        raise PayloadTooLarge(f"The body is larger than the limit of {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"The body is larger than the limit of {max_bytes} bytes")
            chunks.append(chunk)
    except ClientDisconnect as gone:
        # The client's doing, not a fault of the server's: nobody hears this answer, but
        # the audit records a refused request rather than an internal error.
        raise BadRequest(
            "The client closed the connection before its body was complete", code="incomplete"
        ) from gone
    raw = b"".join(chunks)
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise BadRequest(f"The body holds a NUL character (on line {line})", code="value")
    return raw


async def read_body(request: Request, max_bytes: int, accepted: tuple[str, ...]) -> Any:
    """The parsed JSON body; 400 when it is not JSON, or when the input screen refuses it
    (too deep, a string too long, a NUL anywhere: ``service.input_screen``). Every JSON body
    a request sends, a Bundle's entries with it, is parsed here and nowhere else."""
    raw = await read_bytes(request, max_bytes, accepted)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"The body is not valid JSON: {error}", code="structure") from error
    settings = request.app.state.settings
    screen_json(body, raw, JsonLimits(settings.max_json_depth, settings.max_string_length))
    return body


async def read_resource(request: Request, max_bytes: int) -> dict[str, Any]:
    body = await read_body(request, max_bytes, _JSON_TYPES)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object (a FHIR resource)", code="structure")
    return body
