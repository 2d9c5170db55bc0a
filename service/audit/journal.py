"""The audit journal: each AuditEvent stored as one row, served as the FHIR resource it is.

An AuditEvent is written once and never changed, so it needs none of what a care record
needs: no version rows, no history, no generic index rows. Stored as a resource it cost a
current row, a version row and about seven index rows, and that write was a third of every
audited read's cost (database and worker alike). Here it is one row with the served JSON
and one narrow row per ``entity.what`` reference (the request's target and its patients),
which is all that the ``entity`` and ``patient`` searches need
(``service.audit.journal_search``); ``date`` uses the row's ``recorded`` column and
``agent:identifier`` its client id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import String, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.audit.provenance import CLIENT_SYSTEM
from service.db.engine import Database
from service.db.tables import audit_event, audit_event_entity
from service.ids import new_id
from service.storage.repository import Stored, insert_rows

AUDIT_EVENT = "AuditEvent"
# A reference longer than the entity column cannot name a stored resource (a type and an id
# are at most 64 characters each), but a client can send one in a URL: it stays in the event
# and is not searchable, rather than making the whole batch fail to store.
_LONGEST = cast(String, audit_event_entity.c.reference.type).length or 0


class Entry(NamedTuple):
    """One AuditEvent as the journal stores it."""

    id: str
    recorded: int
    client_id: str | None
    content: bytes
    references: tuple[str, ...]


def entry(event: dict[str, Any], moment: int) -> Entry:
    """The journal row of an AuditEvent recorded at ``moment``, with a fresh id."""
    event_id = new_id()
    whats = (e.get("what") for e in event.get("entity", ()))
    references = (what.get("reference") for what in whats if isinstance(what, dict))
    return Entry(
        event_id,
        moment,
        _client_of(event),
        _served(event, event_id),
        tuple(dict.fromkeys(r for r in references if isinstance(r, str) and len(r) <= _LONGEST)),
    )


def _served(event: dict[str, Any], event_id: str) -> bytes:
    """The event as served: version 1, last updated when it was recorded (the middleware
    renders that instant once, for both)."""
    meta = {"versionId": "1", "lastUpdated": event["recorded"]}
    return orjson.dumps({**event, "id": event_id, "meta": meta})


def _client_of(event: dict[str, Any]) -> str | None:
    """The OAuth client the event names as its agent, if any."""
    for agent in event.get("agent", ()):
        identifier = (agent.get("who") or {}).get("identifier") or {}
        if identifier.get("system") == CLIENT_SYSTEM and isinstance(identifier.get("value"), str):
            return str(identifier["value"])
    return None


async def append(connection: AsyncConnection, entries: list[Entry]) -> None:
    """Store a batch of entries inside the caller's transaction."""
    await insert_rows(
        connection,
        audit_event,
        [
            {"id": e.id, "recorded": e.recorded, "client_id": e.client_id, "content": e.content}
            for e in entries
        ],
    )
    await insert_rows(
        connection,
        audit_event_entity,
        [{"event_id": e.id, "reference": r} for e in entries for r in e.references],
    )


_BY_ID = select(audit_event.c.recorded, audit_event.c.content).where(
    audit_event.c.id == bindparam("event_id")
)


def _stored(event_id: str, row: Any) -> Stored:
    return Stored(AUDIT_EVENT, event_id, 1, row[0], False, bytes(row[1]), "POST")


async def stored(
    database: Database, event_id: str, within: AsyncConnection | None = None
) -> Stored | None:
    """The AuditEvent with this id (always version 1), or None."""
    row: Sequence[Any] | None
    if within is not None:
        row = (await within.execute(_BY_ID, {"event_id": event_id})).first()
    else:
        row = await database.first_row(_BY_ID, {"event_id": event_id})
    return None if row is None else _stored(event_id, row)
