"""audit journal

AuditEvents move out of the resource tables into a journal of their own: one row each, plus
one row per entity reference. Events already stored are carried over with their ids, times
and content, and their resource, version and index rows are removed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 14:20:00
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CLIENT_SYSTEM = "https://keyworker-fhir.org/fhir/oauth-client"
_BATCH = 1000


def upgrade() -> None:
    journal = op.create_table(
        "audit_event",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("recorded", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index(op.f("ix_audit_event_recorded"), "audit_event", ["recorded", "id"])
    entities = op.create_table(
        "audit_event_entity",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=512), nullable=False),
    )
    op.create_index(
        op.f("ix_audit_event_entity_reference"), "audit_event_entity", ["reference", "event_id"]
    )
    _move_stored_events(journal, entities)


def _move_stored_events(journal: sa.Table, entities: sa.Table) -> None:
    connection = op.get_bind()
    resource = sa.table(
        "resource",
        sa.column("pk", sa.BigInteger),
        sa.column("type", sa.String),
        sa.column("id", sa.String),
        sa.column("last_updated", sa.BigInteger),
        sa.column("content", sa.LargeBinary),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(resource.c.pk, resource.c.id, resource.c.last_updated, resource.c.content)
            .where(resource.c.type == "AuditEvent", resource.c.pk > last)
            .order_by(resource.c.pk)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        events, references = [], []
        for pk, event_id, recorded, content in rows:
            body = json.loads(bytes(content))
            events.append(
                {
                    "id": event_id,
                    "recorded": recorded,
                    "client_id": _client(body),
                    "content": bytes(content),
                }
            )
            whats = [e.get("what") or {} for e in body.get("entity", [])]
            for reference in dict.fromkeys(w.get("reference") for w in whats):
                if isinstance(reference, str):
                    references.append({"event_id": event_id, "reference": reference})
            last = pk
        connection.execute(journal.insert(), events)
        if references:
            connection.execute(entities.insert(), references)
    stored = "(SELECT pk FROM resource WHERE type = 'AuditEvent')"
    for table in ("token", "token_text", "string", "date", "reference", "composite"):
        op.execute(f"DELETE FROM idx_{table} WHERE resource_pk IN {stored}")
    op.execute("DELETE FROM resource_version WHERE type = 'AuditEvent'")
    # Each deleted resource row has PostgreSQL check that no version row still points at
    # it; without an index on that column every check read the whole version table.
    op.create_index("ix_resource_version_resource_pk_tmp", "resource_version", ["resource_pk"])
    op.execute("DELETE FROM resource WHERE type = 'AuditEvent'")
    op.drop_index("ix_resource_version_resource_pk_tmp", table_name="resource_version")


def _client(body: dict[str, Any]) -> str | None:
    for agent in body.get("agent", []):
        identifier = (agent.get("who") or {}).get("identifier") or {}
        if identifier.get("system") == _CLIENT_SYSTEM:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_event_entity_reference"), table_name="audit_event_entity")
    op.drop_table("audit_event_entity")
    op.drop_index(op.f("ix_audit_event_recorded"), table_name="audit_event")
    op.drop_table("audit_event")
