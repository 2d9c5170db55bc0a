"""``GET /fhir/{type}/{id}`` served before the router: the busiest request, kept short.

A read by id is what GP systems and integration engines send most. Through FastAPI it paid
for matching about a hundred routes and solving a dependency graph on every call, which
profiling showed costs more than the read itself. This ASGI layer recognises the plain read
(a hosted type, a valid FHIR id, no query string) and answers it with the same pieces the
router's handler uses: ``authenticate`` and ``authorise`` (service.routes.access),
``Interactions.read`` and ``resource_response``. Anything else, including a read with
``_format`` or ``_pretty``, goes on to the router, so behaviour cannot drift between them.
It sits inside the audit and the insecure-mode marker, which see it as any other route.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import FhirError
from service.interactions import Interactions
from service.media import outcome_response, response_media_type
from service.registry import RESOURCE_TYPES
from service.routes.access import authenticate, authorise
from service.routes.headers import resource_response
from service.settings import Settings

_PLAIN_READ = re.compile(r"/fhir/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")
_READABLE = frozenset(name for name, t in RESOURCE_TYPES.items() if "read" in t.interactions)


class InstanceReads:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            match = _PLAIN_READ.fullmatch(scope["path"])
            if match is not None and match.group(1) in _READABLE:
                response = await self._read(Request(scope), match.group(1), match.group(2))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _read(self, request: Request, resource_type: str, resource_id: str) -> Response:
        try:
            access = await authenticate(request, self.settings)
            if access is not None:
                await authorise(request, access, resource_type, "read", resource_id)
            response_media_type(request)  # 406 for an Accept it cannot serve
            service: Interactions = request.app.state.interactions
            stored = await service.read(resource_type, resource_id)
            return resource_response(request, stored, service.base_url)
        except FhirError as error:
            return outcome_response(error.status, error.issues, error.headers)
