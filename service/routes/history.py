"""History at instance, type and system level, paged newest first on a signed keyset cursor.

https://hl7.org/fhir/R4/http.html#history
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from service.bundles import history_bundle
from service.errors import BadRequest
from service.interactions import Interactions
from service.media import fhir_response, negotiate
from service.openapi_docs import interaction_docs
from service.paging import Cursors
from service.routes.dependencies import CursorsDep, InteractionsDep, SettingsDep
from service.search.controls import whole_number
from service.search.dates import date_range
from service.settings import Settings
from service.storage.repository import HistoryQuery

_PARAMS = ("_since", "_at", "_count", "_cursor", "_format", "_pretty")


def page_size(request: Request, settings: Settings) -> int:
    raw = request.query_params.get("_count")
    if raw is None:
        return settings.default_page_size
    return max(1, min(whole_number("_count", raw), settings.max_page_size))


def _instant(request: Request, name: str) -> tuple[int, int] | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return date_range(raw)
    except ValueError as error:
        raise BadRequest(f"{name}: {error}", code="value", expression=(name,)) from error


async def history_response(
    request: Request,
    service: Interactions,
    settings: Settings,
    cursors: Cursors,
    base: HistoryQuery,
) -> Response:
    unknown = [k for k in request.query_params if k not in _PARAMS]
    if unknown:
        raise BadRequest("History does not take: " + ", ".join(unknown), code="not-supported")
    since = _instant(request, "_since")
    query = dataclasses.replace(
        base,
        since=since[0] if since else None,
        at=_instant(request, "_at"),
        count=page_size(request, settings),
    )
    token = request.query_params.get("_cursor")
    if token:
        position = cursors.decode(token)
        seq = int(position["s"])
        if position.get("d") == "next":
            query = dataclasses.replace(query, after_seq=seq)
        else:
            query = dataclasses.replace(query, before_seq=seq)
    page, more = await service.history(query)
    keep = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
    path = f"{service.base_url}{request.url.path.removeprefix('/fhir')}"
    links = {"self": f"{path}?{urlencode(request.query_params.multi_items())}".rstrip("?")}
    going_back = query.before_seq is not None

    def page_link(direction: str, seq: int) -> str:
        cursor = cursors.encode({"d": direction, "s": seq})
        return f"{path}?{urlencode([*keep, ('_cursor', cursor)])}"

    if page and (more or going_back):
        links["next"] = page_link("next", page[-1][0])
    if page and (query.after_seq is not None or (going_back and more)):
        links["previous"] = page_link("prev", page[0][0])
    body = history_bundle([s for _, s in page], service.base_url, links, service.clock())
    return fhir_response(request, body)


router = APIRouter(dependencies=[Depends(negotiate)])


@router.get(
    "/_history",
    operation_id="history_system",
    summary="history-system",
    tags=["system"],
    **interaction_docs("history-system", "GET"),
)
async def history_system(
    request: Request, service: InteractionsDep, settings: SettingsDep, cursors: CursorsDep
) -> Response:
    return await history_response(
        request, service, settings, cursors, HistoryQuery(None, None, None, None, 0)
    )
