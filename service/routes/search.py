"""Type-level search (GET ``/Type`` and POST ``/Type/_search``) returning searchset Bundles.

This module only translates: it parses the request (criteria, result parameters, cursor,
``Prefer: handling``), asks ``service.search`` for a page, its total and its includes, and
assembles the Bundle. Every search is ANDed with the caller's access restrictions
(``request.state.access``), and so is every included resource.

A parameter this server does not know or cannot apply is refused (400, ``not-supported``,
naming it), as HAPI and Medplum do: ignoring it would answer a narrower question with every
record. ``Prefer: handling=lenient`` asks for it to be ignored instead; the Bundle's ``self``
link then shows only the parameters applied, and an outcome entry names the ones ignored.
https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from sqlalchemy import ColumnElement, false, select, union_all
from starlette.requests import Request
from starlette.responses import Response

from fhir_mappings.issues import Issue
from service.audit import journal_search
from service.audit.events import patients_of
from service.audit.middleware import about_patients
from service.auth.access import COMPARTMENT, FULL_ACCESS, Access
from service.auth.reach import Reach
from service.db.tables import resource
from service.errors import BadRequest, Forbidden, UnsupportedMediaType, operation_outcome
from service.interactions import Interactions
from service.media import fhir_json, fhir_response
from service.paging import Cursors
from service.search import runner
from service.search.controls import CONTROL_PARAMETERS, Controls, parse_controls
from service.search.criteria import COMMON_PARAMETERS, Criteria, Criterion, Limits, parse
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


def unsupported(unknown: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[str]:
    """The parameters a search cannot apply: those its criteria did not know, and any
    result parameter (``_xyz``) this server does not read."""
    return [*dict.fromkeys(unknown)] + [
        k
        for k, _ in pairs
        if k.startswith("_")
        and k not in CONTROL_PARAMETERS
        and k.partition(":")[0] not in COMMON_PARAMETERS  # criteria: parsed, or refused
        and not k.startswith("_has:")
    ]


def handling(request: Request) -> str:
    """The ``handling`` preference (``strict`` unless the client asks for ``lenient``)."""
    for part in request.headers.get("prefer", "").replace(";", ",").split(","):
        name, _, value = part.partition("=")
        if name.strip().lower() == "handling":
            return value.strip().strip('"').lower()
    return "strict"


def applied(
    request: Request, pairs: Sequence[tuple[str, str]], ignored: Sequence[str]
) -> tuple[list[tuple[str, str]], list[Issue]]:
    """The parameters a search applies (its links carry them and nothing else, nor the
    cursor), and the warning that names the ones ignored; 400 for those ignored unless
    the client asked for lenient handling."""
    if ignored and handling(request) != "lenient":
        raise BadRequest(
            issues=[
                Issue(
                    f"Unknown or unsupported search parameter '{name}' (send "
                    "'Prefer: handling=lenient' to have it ignored)",
                    "not-supported",
                    expression=(name,),
                )
                for name in ignored
            ]
        )
    skipped = {*ignored, "_cursor"}
    kept = [(k, v) for k, v in pairs if k not in skipped]
    if not ignored:
        return kept, []
    warning = Issue(
        "Ignored unknown or unsupported parameters: " + ", ".join(ignored),
        "not-supported",
        "warning",
        expression=tuple(ignored),
    )
    return kept, [warning]


def limits(settings: Settings) -> Limits:
    return Limits(
        settings.search_max_parameters,
        settings.search_max_values,
        settings.search_max_value_length,
    )


def controls_of(
    resource_type: str, pairs: Sequence[tuple[str, str]], settings: Settings
) -> Controls:
    return parse_controls(
        resource_type,
        pairs,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
        max_includes=settings.search_max_includes,
    )


def position_of(
    cursors: Cursors, pairs: Sequence[tuple[str, str]], url: str, controls: Controls
) -> tuple[Sequence[Any] | None, bool]:
    """Where a page starts (None: the first page) and whether it reads forward, from the
    ``_cursor`` a link of the same search (its URL's last segment, its sort) carried."""
    cursor = next((v for k, v in pairs if k == "_cursor"), None)
    if cursor is None:
        return None, True
    token = cursors.decode(cursor)
    if token.get("t") != url.rsplit("/", 1)[-1] or token.get("s") != controls.sort_text:
        raise BadRequest("The page cursor belongs to another search", code="value")
    return token["k"], token["d"] == "next"


def access_of(request: Request) -> Access:
    access: Access = getattr(request.state, "access", FULL_ACCESS)
    return access


async def search_response(
    request: Request,
    resource_type: str,
    service: Interactions,
    settings: Settings,
    cursors: Cursors,
    *,
    within: Sequence[Criterion] = (),
    url: str | None = None,
) -> Response:
    """A search of one type; ``within`` confines it further (a compartment, whose URL is
    ``url``)."""
    pairs = await search_pairs(request)
    access = access_of(request)
    if not access.allows(resource_type, "search"):
        raise Forbidden(f"This access token does not allow searching {resource_type}")
    criteria = parse(resource_type, pairs, limits(settings))
    criteria.criteria.extend(within)
    controls = controls_of(resource_type, pairs, settings)
    keep, issues = applied(request, pairs, unsupported(criteria.unknown, pairs))
    url = url or f"{service.base_url}/{resource_type}"
    position, forward = position_of(cursors, pairs, url, controls)
    scope = _Scope(access, service.base_url)
    found, matched, matches, extra, cut = await _run(
        service, settings, scope, criteria, controls, position=position, forward=forward
    )
    if cut:
        issues.append(
            Issue(
                f"Only the first {settings.search_max_included} included resources are shown",
                "too-costly",
                "warning",
            )
        )
    links = _links(url, keep, cursors, found, controls, forward, position)
    body, patients = _bundle(service, matches, extra, controls, matched, links, issues)
    about_patients(request, patients)
    return fhir_response(request, fhir_json(body))


async def across_types(
    request: Request,
    service: Interactions,
    settings: Settings,
    cursors: Cursors,
    *,
    url: str,
    pieces: Sequence[Criteria],
    pairs: Sequence[tuple[str, str]],
    controls: Controls,
    keep: list[tuple[str, str]],
    issues: list[Issue],
) -> Response:
    """One searchset paging through the resources any of ``pieces`` match, each of its
    own type and within the caller's reach (system search, ``$everything``)."""
    position, forward = position_of(cursors, pairs, url, controls)
    planner = _Scope(access_of(request), service.base_url).planner()
    condition = any_of(tuple(planner.where(piece, _BRANCH) for piece in pieces))
    try:
        async with service.database.bounded_read(settings.search_timeout_ms) as reader:
            found = (
                runner.Page([], [], [], False)
                if controls.summary == "count"
                else await runner.page(
                    reader,
                    "",
                    condition,
                    planner.params,
                    controls.sort,
                    count=controls.count,
                    position=position,
                    forward=forward,
                )
            )
            matched = (
                await runner.total(reader, condition, planner.params) if controls.total else None
            )
    except TimeoutError as error:
        raise _too_long(settings) from error
    matches = [Found(pk, _type_of(content), i, content) for pk, i, content in found.rows]
    links = _links(url, keep, cursors, found, controls, forward, position)
    body, patients = _bundle(service, matches, [], controls, matched, links, issues)
    about_patients(request, patients)
    return fhir_response(request, fhir_json(body))


# The row each branch of a search across types matches (``any_of``): one alias for all of
# them, as each branch is a subquery of its own, so their conditions stay cached.
_BRANCH = resource.alias("branch")


@lru_cache(maxsize=64)
def any_of(conditions: tuple[ColumnElement[bool], ...]) -> ColumnElement[bool]:
    """A ``resource`` row some branch (a type's plan, on ``_BRANCH``) matches: the key
    among the union of each branch's keys, so each is looked up by its own indexes (an OR
    of the branches would read every resource). Built once per shape (each plan's condition
    is cached, so equal shapes give equal tuples), so its statement is cached too."""
    branches = [select(_BRANCH.c.pk).where(c) for c in conditions]
    keys = branches[0] if len(branches) == 1 else union_all(*branches)
    return resource.c.pk.in_(keys)


def _type_of(content: bytes) -> str:
    return str(orjson.loads(content)["resourceType"])


def _too_long(settings: Settings) -> BadRequest:
    return BadRequest(
        f"The search ran longer than {settings.search_timeout_ms} ms; narrow it",
        code="too-costly",
    )


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
        raise _too_long(settings) from error
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
