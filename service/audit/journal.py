"""The audit journal: each AuditEvent stored as one row, served as the FHIR resource it is.

An AuditEvent is written once and never changed, so it needs none of what a care record
needs: no version rows, no history, no generic index rows. Stored as a resource it cost a
current row, a version row and about seven index rows, and that write was a third of every
audited read's cost (database and worker alike). Here it is one row and one narrow row per
``entity.what`` reference (the request's target and its patients), which is all that the
``entity`` and ``patient`` searches need (``service.audit.journal_search``); ``date`` uses
the row's ``recorded`` column and ``agent:identifier`` its client id.

The row keeps the facts of the request (a JSON array of about 260 bytes, where the event
is 1.4 KB), and the AuditEvent is rendered from them when it is read: every FHIR request
writes one and few are ever read, so the journal's rows are a quarter of the size they were
and a request does not build a resource nobody may ask for. Rows written before this form
hold the AuditEvent's JSON itself (an object, never an array) and are served as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import String, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.audit import events
from service.auth.access import Access
from service.db.engine import Database
from service.db.tables import audit_event, audit_event_entity
from service.ids import new_id
from service.search.dates import instant
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


# The first element of the stored facts: their layout, should it ever change.
_FACTS = 1


def entry(
    record: events.RequestRecord, moment: int, patients: Iterable[str], base_url: str
) -> Entry:
    """The journal row of the AuditEvent of a request recorded at ``moment``, with a
    fresh id."""
    access = record.access
    client_id = access.client_id if access is not None else None
    user = access.user if access is not None else None
    people = list(dict.fromkeys(patients))
    facts = [
        _FACTS,
        instant(moment),
        record.method,
        record.path,
        record.query,
        record.status,
        record.address,
        record.interaction,
        client_id,
        user,
        people,
        base_url,
    ]
    target = events.target_of(record.path)
    references = ([target] if target is not None else []) + [f"Patient/{p}" for p in people]
    return Entry(
        new_id(),
        moment,
        client_id,
        orjson.dumps(facts),
        tuple(dict.fromkeys(r for r in references if len(r) <= _LONGEST)),
    )


def served(event_id: str, content: bytes) -> bytes:
    """The AuditEvent a journal row holds, as served: version 1, last updated when it was
    recorded."""
    if content[:1] != b"[":
        return content  # written before the compact form: the event itself
    layout, recorded, method, path, query, status, address, interaction, *rest = orjson.loads(
        content
    )
    if layout != _FACTS:
        raise ValueError(f"AuditEvent {event_id} is stored in an unknown layout ({layout})")
    client_id, user, patients, base_url = rest
    access = Access(client_id=client_id, user=user) if client_id or user else None
    record = events.RequestRecord(method, path, query, status, address, interaction, access)
    event = events.audit_event(record, recorded, patients, base_url)
    meta = {"versionId": "1", "lastUpdated": recorded}
    return orjson.dumps({**event, "id": event_id, "meta": meta})


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
    return Stored(AUDIT_EVENT, event_id, 1, row[0], False, served(event_id, bytes(row[1])), "POST")


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
