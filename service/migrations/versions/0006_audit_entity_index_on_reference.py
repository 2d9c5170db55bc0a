"""the audit entity index on reference alone

``audit_event_entity`` was indexed on (reference, event_id): one distinct key per row, so
PostgreSQL could not share a key between the rows of one reference, and every audited
request inserted its rows at random places in an index that grew with the journal. Once it
outgrew the database's cache those inserts were most of what the audit cost the database: on
a journal of 2,000,000 entity rows the index took 277 MB and a read by id cost 87-115 us of
PostgreSQL's CPU, against 56-66 us with no index at all; indexed on ``reference`` alone
(PostgreSQL stores each key once with its row pointers) it took 18 MB and a read 57-74 us.
The ``entity`` and ``patient`` searches look up the reference and check the event's id on
the row, as before.

Rebuilding the index reads the whole table: seconds per million rows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_audit_event_entity_reference"


def upgrade() -> None:
    op.drop_index(_INDEX, table_name="audit_event_entity")
    op.create_index(_INDEX, "audit_event_entity", ["reference"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="audit_event_entity")
    op.create_index(_INDEX, "audit_event_entity", ["reference", "event_id"])
