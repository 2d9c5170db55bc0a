"""Type-level search (GET ``/Type`` and POST ``/Type/_search``) returning searchset Bundles.

https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fhir_mappings.issues import Issue
from service.errors import BadRequest, UnsupportedMediaType, operation_outcome
from service.interactions import Interactions
from service.media import fhir_response
from service.paging import Cursors
from service.routes.history import page_size
from service.search import runner
from service.search.criteria import parse
from service.search.dates import instant
from service.settings import Settings

# Result parameters this server acts on; any other "_x" is reported as unsupported.
_CONTROL = {"_count", "_total", "_summary", "_cursor", "_format", "_pretty"}
_FORM = "application/x-www-form-urlencoded"


async def search_pairs(request: Request) -> list[tuple[str, str]]:
    """The query's parameters; ``_search`` also reads a form-encoded body."""
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != _FORM:
            raise UnsupportedMediaType(f"POST _search takes {_FORM}, not '{media or '(none)'}'")
        pairs.extend(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    return pairs


async def search_response(
    request: Request,
    resource_type: str,
    service: Interactions,
    settings: Settings,
    cursors: Cursors,
) -> Response:
    pairs = await search_pairs(request)
    strict = "handling=strict" in request.headers.get("prefer", "")
    criteria = parse(resource_type, pairs)
    unsupported = criteria.unknown + [
        k
        for k, _ in pairs
        if k.startswith("_") and k not in _CONTROL and k not in ("_id", "_lastUpdated")
    ]
    if unsupported and strict:
        raise BadRequest(
            "Unknown or unsupported search parameters: " + ", ".join(unsupported),
            code="not-supported",
        )
    params = dict(pairs)
    count = page_size(request, settings)
    after = before = None
    if "_cursor" in params:
        position = cursors.decode(params["_cursor"])
        if position.get("t") != resource_type:
            raise BadRequest("The page cursor belongs to another search", code="value")
        after, before = (position["k"], None) if position["d"] == "next" else (None, position["k"])
    summary_count = params.get("_summary") == "count"
    async with service.database.read() as connection:
        found = (
            runner.Page([], False)
            if summary_count
            else await runner.page(
                connection, criteria, service.base_url, count=count, after=after, before=before
            )
        )
        matched = (
            await runner.total(connection, criteria, service.base_url)
            if summary_count or params.get("_total") == "accurate"
            else None
        )
    keep = [(k, v) for k, v in pairs if k != "_cursor"]
    url = f"{service.base_url}/{resource_type}"
    links = {"self": f"{url}?{urlencode(keep)}".rstrip("?")}
    if found.rows and (found.more or before is not None):
        token = cursors.encode({"t": resource_type, "d": "next", "k": found.rows[-1][0]})
        links["next"] = f"{url}?{urlencode([*keep, ('_cursor', token)])}"
    if found.rows and (after is not None or (before is not None and found.more)):
        token = cursors.encode({"t": resource_type, "d": "prev", "k": found.rows[0][0]})
        links["previous"] = f"{url}?{urlencode([*keep, ('_cursor', token)])}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{url}/{rid}",
            "resource": orjson.Fragment(content),
            "search": {"mode": "match"},
        }
        for _, rid, content in found.rows
    ]
    if unsupported:
        issue = Issue(
            "Ignored unknown or unsupported parameters: " + ", ".join(unsupported),
            "not-supported",
            "warning",
        )
        entries.append({"resource": operation_outcome([issue]), "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "meta": {"lastUpdated": instant(service.clock())},
    }
    if matched is not None:
        bundle["total"] = matched
    bundle["link"] = [{"relation": r, "url": u} for r, u in links.items()]
    bundle["entry"] = entries
    return fhir_response(request, orjson.dumps(bundle))
