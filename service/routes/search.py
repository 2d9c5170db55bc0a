"""Type-level search (GET ``/Type`` and POST ``/Type/_search``) returning searchset Bundles.

This module only translates: it parses the request (criteria, result parameters, cursor,
``Prefer: handling``), asks ``service.search`` for a page, its total and its includes, and
assembles the Bundle. Every search is ANDed with the caller's access restrictions
(``request.state.access``), and so is every included resource.
https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from sqlalchemy import false
from starlette.requests import Request
from starlette.responses import Response

from fhir_mappings.issues import Issue
from service.audit import journal_search
from service.audit.events import patients_of
from service.audit.middleware import about_patients
from service.auth.access import COMPARTMENT, FULL_ACCESS, Access
from service.auth.reach import Reach
from service.errors import BadRequest, Forbidden, UnsupportedMediaType, operation_outcome
from service.interactions import Interactions
from service.media import fhir_json, fhir_response
from service.paging import Cursors
from service.search import runner
from service.search.controls import CONTROL_PARAMETERS, Controls, parse_controls
from service.search.criteria import Criteria, Limits, parse
from service.search.dates import instant
from service.search.includes import Found, included, page_links, page_with_included
from service.search.parameters import JOURNALED_TYPES
from service.search.projection import project
from service.search.sql import Planner
from service.settings import Settings

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


class _Scope:
    """The caller's view: which types it may search and the criteria each search gets."""

    def __init__(self, access: Access, base_url: str) -> None:
        self.access = access
        self.base_url = base_url
        self.restrict = Reach(access)

    def planner(self) -> Planner:
        """A planner for one statement, ANDing this caller's restrictions everywhere."""
        return Planner(self.base_url, self.restrict)


def _unsupported(criteria: Criteria, pairs: Sequence[tuple[str, str]]) -> list[str]:
    specials = {"_id", "_lastUpdated", *CONTROL_PARAMETERS}
    return criteria.unknown + [
        k for k, _ in pairs if k.startswith("_") and k not in specials and not k.startswith("_has:")
    ]


async def search_response(
    request: Request,
    resource_type: str,
    service: Interactions,
    settings: Settings,
    cursors: Cursors,
) -> Response:
    pairs = await search_pairs(request)
    access: Access = getattr(request.state, "access", FULL_ACCESS)
    if not access.allows(resource_type, "search"):
        raise Forbidden(f"This access token does not allow searching {resource_type}")
    limits = Limits(
        settings.search_max_parameters,
        settings.search_max_values,
        settings.search_max_value_length,
    )
    criteria = parse(resource_type, pairs, limits)
    controls = parse_controls(
        resource_type,
        pairs,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
        max_includes=settings.search_max_includes,
    )
    unsupported = _unsupported(criteria, pairs)
    if unsupported and "handling=strict" in request.headers.get("prefer", ""):
        raise BadRequest(
            "Unknown or unsupported search parameters: " + ", ".join(unsupported),
            code="not-supported",
        )
    position, forward = None, True
    cursor = next((v for k, v in pairs if k == "_cursor"), None)
    if cursor is not None:
        token = cursors.decode(cursor)
        if token.get("t") != resource_type or token.get("s") != controls.sort_text:
            raise BadRequest("The page cursor belongs to another search", code="value")
        position, forward = token["k"], token["d"] == "next"
    scope = _Scope(access, service.base_url)
    found, matched, matches, extra, cut = await _run(
        service, settings, scope, criteria, controls, position=position, forward=forward
    )
    issues = []
    if unsupported:
        issues.append(
            Issue(
                "Ignored unknown or unsupported parameters: " + ", ".join(unsupported),
                "not-supported",
                "warning",
            )
        )
    if cut:
        issues.append(
            Issue(
                f"Only the first {settings.search_max_included} included resources are shown",
                "too-costly",
                "warning",
            )
        )
    keep = [(k, v) for k, v in pairs if k != "_cursor"]
    links = _links(
        f"{service.base_url}/{resource_type}", keep, cursors, found, controls, forward, position
    )
    body, patients = _bundle(service, matches, extra, controls, matched, links, issues)
    about_patients(request, patients)
    return fhir_response(request, fhir_json(body))


async def _run(
    service: Interactions,
    settings: Settings,
    scope: _Scope,
    criteria: Criteria,
    controls: Controls,
    *,
    position: Sequence[Any] | None,
    forward: bool,
) -> tuple[runner.Page, int | None, list[Found], list[Found], bool]:
    """The page (and its matches), the total if asked for, and the included resources
    (and whether the include limit cut them)."""
    resource_type = criteria.resource_type
    journaled = resource_type in JOURNALED_TYPES
    planner = scope.planner()
    if journaled:
        restrictions = scope.restrict(resource_type)
        condition = (
            false()
            if restrictions is None
            else journal_search.condition([*restrictions, *criteria.criteria], scope.base_url)
        )
    else:
        condition = planner.where(criteria)
    try:
        async with service.database.bounded_read(settings.search_timeout_ms) as reader:
            if journaled:
                found, matched = await journal_search.run(
                    reader, condition, controls, position=position, forward=forward
                )
                matches = [Found(pk, resource_type, i, c) for pk, i, c in found.rows]
                return found, matched, matches, [], False
            # On PostgreSQL a page and its first include round are one statement.
            links = (
                page_links(controls.includes, resource_type, planner)
                if reader.postgres and controls.includes and controls.summary != "count"
                else ()
            )
            extra: list[Found] = []
            cut = False
            if links:
                found, extra, cut = await page_with_included(
                    reader,
                    resource_type,
                    condition,
                    planner,
                    controls.sort,
                    links,
                    count=controls.count,
                    position=position,
                    forward=forward,
                    limit=settings.search_max_included,
                )
            elif controls.summary == "count":
                found = runner.Page([], [], [], False)
            else:
                found = await runner.page(
                    reader,
                    resource_type,
                    condition,
                    planner.params,
                    controls.sort,
                    count=controls.count,
                    position=position,
                    forward=forward,
                )
            matched = (
                await runner.total(reader, condition, planner.params) if controls.total else None
            )
            matches = [Found(pk, resource_type, i, c) for pk, i, c in found.rows]
            if controls.includes and matches and not links:
                extra, cut = await included(
                    reader, controls.includes, matches, scope.planner, settings.search_max_included
                )
    except TimeoutError as error:  # the driver cancelled a statement at the limit
        raise BadRequest(
            f"The search ran longer than {settings.search_timeout_ms} ms; narrow it",
            code="too-costly",
        ) from error
    return found, matched, matches, extra, cut


def _links(
    url: str,
    keep: list[tuple[str, str]],
    cursors: Cursors,
    found: runner.Page,
    controls: Controls,
    forward: bool,
    position: object,
) -> dict[str, str]:
    links = {"self": f"{url}?{urlencode(keep)}".rstrip("?")}

    def at(direction: str, key: list[Any]) -> str:
        token = cursors.encode(
            {"t": url.rsplit("/", 1)[-1], "s": controls.sort_text, "d": direction, "k": key}
        )
        return f"{url}?{urlencode([*keep, ('_cursor', token)])}"

    if not found.rows:
        return links
    if found.more if forward else True:
        links["next"] = at("next", found.last)
    if (position is not None) if forward else found.more:
        links["previous"] = at("prev", found.first)
    return links


def _bundle(
    service: Interactions,
    matches: list[Found],
    extra: list[Found],
    controls: Controls,
    matched: int | None,
    links: dict[str, str],
    issues: list[Issue],
) -> tuple[dict[str, Any], list[str]]:
    """The searchset Bundle, and the ids of the patients its records belong to, for the
    audit: read from the entries of types in a patient compartment alone, where the audit
    would otherwise parse the whole Bundle (a sixteenth of a search's CPU with its included
    PractitionerRoles)."""
    patients: list[str] = []

    def entry(found: Found, mode: str) -> dict[str, Any]:
        content = project(found.content, controls.summary, controls.elements)
        if found.type in COMPARTMENT:
            patients.extend(patients_of(orjson.loads(content), service.base_url))
        return {
            "fullUrl": f"{service.base_url}/{found.type}/{found.id}",
            "resource": orjson.Fragment(content),
            "search": {"mode": mode},
        }

    entries = [entry(m, "match") for m in matches] + [entry(e, "include") for e in extra]
    if issues:
        entries.append({"resource": operation_outcome(issues), "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "meta": {"lastUpdated": instant(service.clock())},
    }
    if matched is not None:
        bundle["total"] = matched
    bundle["link"] = [{"relation": r, "url": u} for r, u in links.items()]
    bundle["entry"] = entries
    return bundle, patients
