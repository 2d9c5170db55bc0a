"""AuditEvent search, over the audit journal's two tables rather than the index tables.

R4's AuditEvent parameters served here (https://hl7.org/fhir/R4/auditevent.html#search):
``patient`` and ``entity`` look up the entity table (a bare id in ``entity`` matches that id
of any type); ``date`` and ``_lastUpdated`` compare the instant the event was recorded;
``agent:identifier`` names the OAuth client (agents here are identified, never referenced,
so a plain ``agent`` reference matches nothing); ``type`` is always the REST event type;
``_id`` the event's id. Chains, ``_has`` and includes are refused with a 400 rather than
answered wrongly. The caller's restrictions are criteria like the request's; a ``patient/``
token's confinement (a ``confining`` criterion) shows only the events about its patient
alone. Pages are keyset pages on (recorded, id), oldest first unless ``_sort=-date`` (or
``-_lastUpdated``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
)

from service.audit.events import EVENT_TYPE
from service.audit.journal import served
from service.audit.provenance import CLIENT_SYSTEM
from service.db.engine import Reader
from service.db.tables import audit_event, audit_event_entity
from service.errors import BadRequest
from service.search.controls import Controls
from service.search.criteria import Criterion
from service.search.extraction import split_reference
from service.search.runner import Page
from service.search.sql import date_bounds, date_match, token_match, token_parts

_SORTABLE = ("date", "_lastUpdated")
# Every client id in the journal is an identifier in this system.
_CLIENT_SYSTEM = literal(CLIENT_SYSTEM)


def _unsupported(criterion: Criterion) -> BadRequest:
    modifier = f":{criterion.modifier}" if criterion.modifier else ""
    return BadRequest(
        f"AuditEvent search does not support '{criterion.param.name}{modifier}' "
        "(AuditEvents are kept in the audit journal)",
        code="not-supported",
    )


def _missing(criterion: Criterion, present: ColumnElement[bool]) -> ColumnElement[bool]:
    return not_(present) if criterion.values[0] == "true" else present


def _entity(criterion: Criterion, base_url: str, patient: bool) -> ColumnElement[bool]:
    """An ``entity.what`` of the event is one of the values (a Patient for ``patient``)."""
    entity = audit_event_entity.c.reference
    type_modifier = criterion.modifier if criterion.modifier not in (None, "missing") else None
    wanted = "Patient" if patient else type_modifier
    if patient and type_modifier not in (None, "Patient"):
        raise _unsupported(criterion)
    matches: list[ColumnElement[bool]] = []
    if criterion.modifier == "missing":
        matches.append(entity.startswith("Patient/") if patient else true())
    for value in criterion.values if criterion.modifier != "missing" else ():
        target_type, target_id, absolute = split_reference(value, base_url)
        if target_id is None:  # a bare id, or another server's URL
            if absolute is not None and "/" in absolute:
                matches.append(entity == absolute)
            elif wanted is not None:
                matches.append(entity == f"{wanted}/{value}")
            else:
                matches.append(entity.endswith(f"/{value}", autoescape=True))
        elif wanted is None or target_type == wanted:
            matches.append(entity == f"{target_type}/{target_id}")
    named = or_(false(), *matches)
    found = exists(
        select(audit_event_entity.c.event_id).where(
            audit_event_entity.c.event_id == audit_event.c.id, named
        )
    )
    if criterion.confining:
        # A token confined to its patient sees an event only when every patient the event
        # names is that patient: a search's event about several patients is not its own.
        others = exists(
            select(audit_event_entity.c.event_id).where(
                audit_event_entity.c.event_id == audit_event.c.id,
                entity.startswith("Patient/"),
                not_(named),
            )
        )
        return and_(found, not_(others))
    return _missing(criterion, found) if criterion.modifier == "missing" else found


def _type(criterion: Criterion) -> ColumnElement[bool]:
    """Every event here is a RESTful operation: the criterion holds for all or none."""
    system, code = EVENT_TYPE["system"], EVENT_TYPE["code"]
    if criterion.modifier == "missing":
        return _missing(criterion, true())
    hit = any(_token_hit(system, code, value) for value in criterion.values)
    if criterion.modifier is None:
        return true() if hit else false()
    if criterion.modifier == "not":
        return false() if hit else true()
    raise _unsupported(criterion)


def _token_hit(system: str, code: str, value: str) -> bool:
    if "|" not in value:
        return value == code
    wanted_system, _, wanted_code = value.partition("|")
    return wanted_system == system and wanted_code in ("", code)


def _agent(criterion: Criterion) -> ColumnElement[bool]:
    client = audit_event.c.client_id
    if criterion.modifier == "identifier":
        return or_(
            *[token_match(_CLIENT_SYSTEM, client, *token_parts(v)) for v in criterion.values]
        )
    if criterion.modifier == "missing":
        return _missing(criterion, true())
    if criterion.modifier is None:
        return false()  # no agent here is a reference, only an identifier or a display
    raise _unsupported(criterion)


def condition(criteria: Sequence[Criterion], base_url: str) -> ColumnElement[bool]:
    """Every criterion (the request's and the caller's restrictions) as one condition."""
    clauses: list[ColumnElement[bool]] = [true()]
    for criterion in criteria:
        name = criterion.param.name
        if criterion.chain is not None or criterion.has is not None:
            raise _unsupported(criterion)
        if name == "_id":
            # not in_(): its placeholders are only expanded by SQLAlchemy's own execution
            clauses.append(or_(false(), *[audit_event.c.id == v for v in criterion.values]))
        elif name in _SORTABLE:
            if criterion.modifier == "missing":
                clauses.append(_missing(criterion, true()))
                continue
            recorded = audit_event.c.recorded
            matches = []
            for value in criterion.values:
                prefix, low, high = date_bounds(value)
                matches.append(date_match(recorded, recorded, prefix, (low, high)))
            clauses.append(or_(*matches))
        elif name in ("patient", "entity"):
            clauses.append(_entity(criterion, base_url, patient=name == "patient"))
        elif name == "type":
            clauses.append(_type(criterion))
        elif name == "agent":
            clauses.append(_agent(criterion))
        else:
            raise _unsupported(criterion)
    return and_(*clauses)


async def run(
    reader: Reader,
    where: ColumnElement[bool],
    controls: Controls,
    *,
    position: Sequence[Any] | None,
    forward: bool,
) -> tuple[Page, int | None]:
    """One keyset page of matching events and, when asked for, how many match in all."""
    if controls.includes:
        raise BadRequest(
            "AuditEvents are kept in the audit journal: a search of them cannot include "
            "other resources",
            code="not-supported",
        )
    for key in controls.sort:
        if key.name not in _SORTABLE:
            raise BadRequest(
                f"_sort: AuditEvents sort by date or _lastUpdated, not '{key.name}'",
                code="not-supported",
            )
    descending = bool(controls.sort) and controls.sort[0].descending
    found = Page([], [], [], False)
    if controls.summary != "count":
        found = await _page(reader, where, controls.count, position, forward, descending)
    total = None
    if controls.total:
        count = select(func.count()).select_from(audit_event).where(where)
        total = int((await reader.rows(count))[0][0] or 0)
    return found, total


async def _page(
    reader: Reader,
    where: ColumnElement[bool],
    count: int,
    position: Sequence[Any] | None,
    forward: bool,
    descending: bool,
) -> Page:
    key = tuple_(audit_event.c.recorded, audit_event.c.id)
    query = select(audit_event.c.id, audit_event.c.recorded, audit_event.c.content).where(where)
    if position is not None:
        if len(position) != 2:
            return Page([], [], [], False)
        boundary = tuple_(*position)
        query = query.where(key > boundary if forward != descending else key < boundary)
    ascending = forward != descending
    order = [c.asc() if ascending else c.desc() for c in (audit_event.c.recorded, audit_event.c.id)]
    rows = list(await reader.rows(query.order_by(*order).limit(count + 1)))
    more = len(rows) > count
    rows = rows[:count]
    if not forward:
        rows.reverse()
    positions = [[recorded, event_id] for event_id, recorded, _ in rows]
    return Page(
        [(0, event_id, served(event_id, bytes(content))) for event_id, _, content in rows],
        positions[0] if positions else [],
        positions[-1] if positions else [],
        more,
    )
