"""The busiest requests, answered before the router: a plain read by id and ``$accountable``.

GP systems call ``$accountable`` for every patient they open, and integration engines read
by id more than anything else. Through FastAPI each paid for matching about a hundred routes
and solving a dependency graph, which profiling showed costs more than the work itself. This
ASGI layer recognises those two requests and answers them with the very pieces the routed
handlers use: ``authenticate`` and ``authorise`` (service.routes.access), then
``Interactions.read`` with ``resource_response``, or the ``$accountable`` handler itself.
Anything else, including a read with ``_format`` or ``_pretty``, goes on to the router, so the
two ways in cannot drift apart. It sits inside the audit and the insecure-mode marker, which
see these requests as any other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth.access import Access
from service.errors import FhirError
from service.interactions import Interactions
from service.media import outcome_response, response_media_type
from service.registry import OPERATIONS, RESOURCE_TYPES
from service.routes import operations
from service.routes.access import authenticate, authorise
from service.routes.headers import resource_response
from service.settings import Settings

Answer = Callable[[Request, Access | None], Coroutine[Any, Any, Response]]

_PLAIN_READ = re.compile(r"/fhir/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")
_READABLE = frozenset(name for name, t in RESOURCE_TYPES.items() if "read" in t.interactions)
_ACCOUNTABLE = "/fhir" + OPERATIONS["accountable"].path


async def _read(request: Request, access: Access | None) -> Response:
    _, _, resource_type, resource_id = request.scope["path"].split("/")
    if access is not None:
        await authorise(request, access, resource_type, "read", resource_id)
    response_media_type(request)  # 406 for an Accept it cannot serve
    service: Interactions = request.app.state.interactions
    stored = await service.read(resource_type, resource_id)
    return resource_response(request, stored, service.base_url)


async def _accountable(request: Request, access: Access | None) -> Response:
    if access is not None:
        await authorise(request, access, None, None)  # an operation checks its own needs
    return await operations.accountable(request, request.app.state.keyworking)


def _answer_for(scope: Scope) -> Answer | None:
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    path = scope["path"]
    if path == _ACCOUNTABLE:
        return _accountable
    if scope["query_string"]:
        return None
    match = _PLAIN_READ.fullmatch(path)
    return _read if match is not None and match.group(1) in _READABLE else None


class HotPaths:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = _answer_for(scope)
        if answer is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            response = await answer(request, await authenticate(request, self.settings))
        except FhirError as error:
            response = outcome_response(error.status, error.issues, error.headers)
        await response(scope, receive, send)
