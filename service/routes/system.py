"""System-level endpoints: the CapabilityStatement, and liveness/readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.capability import capability_statement
from service.media import fhir_json, fhir_response
from service.routes.dependencies import InteractionsDep
from service.search.dates import instant

router = APIRouter()
probes = APIRouter()


@router.get("/metadata", operation_id="capabilities", summary="capabilities", tags=["system"])
async def metadata(request: Request, service: InteractionsDep) -> Response:
    statement = capability_statement(service.base_url, instant(service.clock()))
    return fhir_response(request, fhir_json(statement))


@probes.get("/healthz", operation_id="healthz", tags=["operations"])
async def healthz() -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


@probes.get("/readyz", operation_id="readyz", tags=["operations"])
async def readyz(service: InteractionsDep) -> JSONResponse:
    """Readiness: the database answers."""
    try:
        async with service.database.read() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database means not ready
        return JSONResponse({"status": "database unreachable"}, status_code=503)
    return JSONResponse({"status": "ok"})
