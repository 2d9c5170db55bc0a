"""The ASGI application, built from explicit settings: ``create_app(settings)``.

Nothing here reads the environment; the CLI builds ``Settings()`` and tests pass their own.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.telemetry import TelemetryConfig
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_mappings.issues import Issue
from service.application import Service
from service.audit.middleware import AuditMiddleware
from service.audit.writer import AuditWriter
from service.auth.setup import build_auth
from service.capability import SOFTWARE_VERSION
from service.composition import build_interactions
from service.compression import Compression
from service.conformance import TYPES as DEFINITIONAL_TYPES
from service.conformance import build_router as conformance_router
from service.db.engine import Database
from service.errors import (
    FhirError,
    MethodNotAllowed,
    NotFound,
)
from service.head_requests import HeadAsGet
from service.ids import new_id
from service.input_screen import InputScreen
from service.interactions import Clock, system_clock
from service.keyworking.answers import Keyworking
from service.media import outcome_response
from service.paging import Cursors
from service.registry import RESOURCE_TYPES
from service.routes import across_types, auth, bundles, history, operations, resources, system
from service.routes.access import INSECURE_HEADER, access_dependency
from service.routes.hot_paths import HotPaths
from service.settings import Settings

log = logging.getLogger("keyworker")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FhirError)
    async def fhir_error(_: Request, error: FhirError) -> Response:
        return outcome_response(error.status, error.issues, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> Response:
        issues = [
            Issue(str(e.get("msg")), "invalid", expression=(".".join(map(str, e["loc"])),))
            for e in error.errors()
        ]
        return outcome_response(400, issues, {})

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        code = "not-found" if error.status_code == 404 else "processing"
        return outcome_response(error.status_code, [Issue(str(error.detail), code)], {})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        issue = Issue("An internal error occurred; it has been logged", "exception", "fatal")
        return outcome_response(500, [issue], {})


def _fallback_router() -> APIRouter:
    """Unknown types are 404, known paths with the wrong method 405: both as outcomes."""
    router = APIRouter()

    async def fallback(request: Request, rest: str) -> Response:
        first = rest.split("/", 1)[0]
        if first in RESOURCE_TYPES or first in DEFINITIONAL_TYPES:
            raise MethodNotAllowed(f"{request.method} is not supported on /fhir/{rest}")
        if first and first[0].isupper():
            raise NotFound(f"Resource type '{first}' is not supported by this server")
        raise NotFound(f"There is nothing at /fhir/{rest}")

    router.add_api_route(
        "/{rest:path}",
        fallback,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
        include_in_schema=False,
    )
    return router


class AnnounceInsecure:
    """Marks every response of the unauthenticated development mode with a header.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware``
    runs each request through an extra task and a streamed response, on every request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def announce(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[INSECURE_HEADER] = "authentication is switched off"
            await send(message)

        await self.app(scope, receive, announce)


def telemetry(settings: Settings) -> TelemetryConfig | None:
    """FastAPI's telemetry: its defaults when the operator turns OpenTelemetry on, else off."""
    if settings.opentelemetry:
        return None
    return {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(
    settings: Settings, *, clock: Clock = system_clock, ids: Callable[[], str] = new_id
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.database_url, pool_size=settings.db_pool_size)
        app.state.settings = settings
        app.state.interactions = build_interactions(settings, database, clock=clock, ids=ids)
        http = httpx.AsyncClient(timeout=10.0)
        app.state.auth = build_auth(settings, database, http)
        app.state.keyworking = Keyworking(
            app.state.interactions, caseload_limit=settings.caseload_limit
        )
        app.state.cursors = Cursors(await database.secret("cursor"))
        app.state.audit = AuditWriter(database)
        app.state.audit.start()
        if settings.insecure_no_auth:
            log.warning(
                "INSECURE: started with authentication switched off (--insecure-no-auth); "
                "every request is served without a token. Never do this with real data."
            )
        # Everything built so far (the FHIR models above all) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it each time a
        # large answer (the gaps report) allocates its way into one.
        gc.freeze()
        yield
        await app.state.audit.stop()
        await http.aclose()
        await database.dispose()

    app = Service(
        title="Keyworker FHIR",
        version=SOFTWARE_VERSION,
        description=(
            "FHIR R4 CareTeam and CarePlan service: who is the named accountable professional "
            "and who are the key workers for each person receiving health and social care."
        ),
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        telemetry=telemetry(settings),
    )
    _install_error_handlers(app)

    app.add_middleware(HotPaths, settings=settings)
    app.add_middleware(InputScreen, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(HeadAsGet)
    if settings.insecure_no_auth:
        app.add_middleware(AnnounceInsecure)
    app.include_router(system.probes)
    app.include_router(system.router, prefix="/fhir")
    app.include_router(auth.smart, prefix="/fhir")
    app.include_router(auth.router)
    app.add_middleware(AuditMiddleware, enabled=not settings.insecure_no_auth)
    # Outside the audit, which reads the patients of an answer from its uncompressed bytes.
    app.add_middleware(Compression, minimum_bytes=settings.gzip_min_bytes)
    if settings.cors_origin_list:
        # Outermost: a preflight is answered before anything checks a token or audits it.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["*"],
            expose_headers=["ETag", "Location", "Last-Modified", "Content-Location"],
        )
    protected = [access_dependency(settings)]
    app.include_router(history.router, prefix="/fhir", dependencies=protected)
    # Operations first: /CareTeam/$accountable must win over the generated /CareTeam/{id}.
    app.include_router(operations.build_router(), prefix="/fhir", dependencies=protected)
    app.include_router(conformance_router(), prefix="/fhir", dependencies=protected)
    app.include_router(across_types.build_router(), prefix="/fhir", dependencies=protected)
    app.include_router(resources.build_router(), prefix="/fhir", dependencies=protected)
    app.include_router(bundles.router, prefix="/fhir", dependencies=protected)
    app.include_router(_fallback_router(), prefix="/fhir", dependencies=protected)
    return app
