"""The busiest requests, answered before the router: read, search, create and update of a
resource type, and ``$accountable``.

GP systems call ``$accountable`` for every patient they open, and integration engines read,
search and write CareTeams more than anything else. Through FastAPI each request paid for
matching about a hundred routes and solving a dependency graph, which profiling showed costs
more than a read's own work. This ASGI layer recognises those requests by method and path and
calls the router's own handlers (``service.routes.resources.handlers``) after the same steps
its dependencies take: ``authenticate`` and ``authorise`` (service.routes.access), then
content negotiation. Anything else (conditional writes, ``_search``, history, other
operations, an id that is not a FHIR id) goes on to the router. It sits inside the audit and
the insecure-mode marker, which see these requests as any other.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth.access import Access
from service.errors import FhirError
from service.media import outcome_response, response_media_type
from service.registry import OPERATIONS, RESOURCE_TYPES
from service.routes import operations, resources
from service.routes.access import authenticate, authorise
from service.settings import Settings

Answer = Callable[[Request, Access | None], Coroutine[Any, Any, Response]]

# Registry interaction names of the requests answered here.
HOT_INTERACTIONS = ("read", "update", "search-type", "create")
_INSTANCE = re.compile(r"/fhir/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")
_TYPE = re.compile(r"/fhir/([A-Z][A-Za-z]+)")
_ACCOUNTABLE = "/fhir" + OPERATIONS["accountable"].path


@dataclass(frozen=True)
class _Hot:
    interaction: str
    handler: Callable[..., Coroutine[Any, Any, Response]]
    wants: tuple[str, ...]  # the handler's arguments besides the request


def _table() -> dict[tuple[str, str, bool], _Hot]:
    """(method, type, at an instance) -> the handler the router has for it."""
    table: dict[tuple[str, str, bool], _Hot] = {}
    for rtype in RESOURCE_TYPES.values():
        of_type = resources.handlers(rtype.name)
        for interaction in HOT_INTERACTIONS:
            if interaction not in rtype.interactions:
                continue
            method, path, handler = of_type[interaction]
            wants = tuple(inspect.signature(handler).parameters)[1:]
            table[(method, rtype.name, path == "/{id}")] = _Hot(interaction, handler, wants)
    return table


_HOT = _table()


async def _interaction(
    request: Request, access: Access | None, *, hot: _Hot, resource_type: str, resource_id: str
) -> Response:
    if access is not None:
        await authorise(request, access, resource_type, hot.interaction, resource_id or None)
    response_media_type(request)  # 406 before any work, as the router's dependency does
    state = request.app.state
    available = {
        "id": resource_id,
        "service": state.interactions,
        "settings": state.settings,
        "cursors": state.cursors,
    }
    return await hot.handler(request, **{name: available[name] for name in hot.wants})


async def _accountable(request: Request, access: Access | None) -> Response:
    if access is not None:
        await authorise(request, access, None, None)  # an operation checks its own needs
    return await operations.accountable(request, request.app.state.keyworking)


def _answer_for(scope: Scope) -> Answer | None:
    if scope["type"] != "http":
        return None
    method, path = scope["method"], scope["path"]
    if method == "GET" and path == _ACCOUNTABLE:
        return _accountable
    instance = _INSTANCE.fullmatch(path)
    match = instance or _TYPE.fullmatch(path)
    if match is None:
        return None
    hot = _HOT.get((method, match.group(1), instance is not None))
    if hot is None:
        return None
    resource_id = instance.group(2) if instance is not None else ""
    return partial(_interaction, hot=hot, resource_type=match.group(1), resource_id=resource_id)


class HotPaths:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = _answer_for(scope)
        if answer is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await answer(request, await authenticate(request, self.settings))
        except FhirError as error:
            response = outcome_response(error.status, error.issues, error.headers)
        await response(scope, receive, send)
