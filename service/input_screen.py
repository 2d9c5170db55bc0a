"""The request-line half of the input screen: NUL refused in the path, the query and a
form-encoded body, before any handler runs.

A NUL character is in no FHIR value (FHIR's string type does not allow it) and PostgreSQL
text cannot hold one, so a request carrying one anywhere a parameter or id is read from is
refused here with a 400 naming the parameter, whatever path it takes next (the hot paths,
the routers, the token endpoint), and before anything reaches the database or a streamed
answer starts. Looking costs a byte search; the culprit is only named once one is found.
JSON bodies are screened where they are parsed (``service.json_screen``).

Answers speak the endpoint's language: an OperationOutcome, or under ``/auth/`` an OAuth
error (RFC 6749 section 5.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import BadRequest, FhirError, PayloadTooLarge
from service.json_screen import NUL, printable
from service.media import outcome_response

_FORM = b"application/x-www-form-urlencoded"


def nul_in(pairs: Sequence[tuple[str, str]]) -> str | None:
    """The name of the first parameter whose name or value holds a NUL, if any."""
    for name, value in pairs:
        if NUL in name or NUL in value:
            return printable(name)
    return None


def _query_problem(query: bytes) -> FhirError | None:
    if b"%00" not in query and b"\x00" not in query:
        return None
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    name = nul_in(pairs)
    if name is None:
        return None  # '%00' as part of an escaped '%2500', say
    return _parameter_refusal(name)


def _parameter_refusal(name: str) -> FhirError:
    return BadRequest(
        f"Parameter '{name}' contains a NUL character, which no FHIR value may hold",
        code="value",
        expression=(name,),
    )


def _form_problem(body: bytes) -> FhirError | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return BadRequest("The form-encoded body is not UTF-8 text", code="structure")
    if "%00" not in text and NUL not in text:
        return None
    name = nul_in(parse_qsl(text, keep_blank_values=True))
    return None if name is None else _parameter_refusal(name)


def _is_form(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == _FORM
    return False


def _refusal(scope: Scope, error: FhirError) -> Response:
    if scope["path"].startswith("/auth/"):
        description = " ".join(issue.diagnostics for issue in error.issues)
        body = {"error": "invalid_request", "error_description": description}
        return Response(
            orjson.dumps(body),
            error.status,
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
            media_type="application/json",
        )
    return outcome_response(error.status, error.issues, error.headers)


class InputScreen:
    """ASGI middleware refusing NUL in the path, the query and a form-encoded body.

    Plain ASGI, as the other middleware here: a request with nothing to refuse costs a few
    byte searches. A form body is read whole (up to ``max_body_bytes``) before the app sees
    it, and handed on unchanged.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem: FhirError | None = None
        if NUL in scope["path"]:
            problem = BadRequest(
                f"The path '{printable(scope['path'])}' contains a NUL character, "
                "which no FHIR id or name may hold",
                code="value",
            )
        else:
            problem = _query_problem(scope.get("query_string", b""))
        if problem is None and scope["method"] == "POST" and _is_form(scope):
            body, problem = await self._form_body(receive)
            if problem is None:
                receive = _replay(body, receive)
        if problem is not None:
            await _refusal(scope, problem)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _form_body(self, receive: Receive) -> tuple[bytes, FhirError | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                limit = self.max_body_bytes
                return b"", PayloadTooLarge(f"The body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        return body, _form_problem(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then whatever the client sends next
    (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
