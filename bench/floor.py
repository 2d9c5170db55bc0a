"""The floor: the least any FHIR server could do to return one stored CareTeam.

Why: absolute req/s on a shared 2-core machine mean little; a ratio to the cheapest possible
server on the same PostgreSQL, the same cores and the same run does. The floor does one indexed
lookup (``resource`` is unique on ``(type, id)``) and returns the stored bytes untouched: no
authorisation, no content negotiation, no FHIR semantics. Run under uvicorn with the service's
worker count, e.g. ``FLOOR_DATABASE_URL=postgresql://... uvicorn bench.floor:app --workers 2``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

QUERY = "SELECT content FROM resource WHERE type = 'CareTeam' AND id = $1 AND NOT deleted"


def _dsn() -> str:
    url = os.environ["FLOOR_DATABASE_URL"]
    # The service's SQLAlchemy-style URL may name a driver; asyncpg wants plain postgresql://.
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    pool_size = int(os.environ.get("FLOOR_POOL_SIZE", "10"))
    app.state.pool = await asyncpg.create_pool(_dsn(), min_size=1, max_size=pool_size)
    try:
        yield
    finally:
        await app.state.pool.close()


async def care_team(request: Request) -> Response:
    """``GET /fhir/CareTeam/{id}``: the stored JSON, or a bare 404."""
    content = await request.app.state.pool.fetchval(QUERY, request.path_params["id"])
    if content is None:
        return Response(status_code=404)
    return Response(bytes(content), media_type="application/fhir+json")


app = Starlette(routes=[Route("/fhir/CareTeam/{id}", care_team)], lifespan=_lifespan)
