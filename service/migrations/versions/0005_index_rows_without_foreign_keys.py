"""index rows without foreign keys

Version and index rows no longer carry a foreign key to their resource row. They are written
only by the statement that writes that row (``service.storage.combined_writes``), keyed by
the key it returns, and no resource row is ever removed, so the key could not dangle; but
PostgreSQL checked it for every row, by a lookup and a share lock on the resource row, about
a tenth of a transaction Bundle's load on the machine (5,000 patients, two workers).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 21:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = (
    "resource_version",
    "idx_token",
    "idx_token_text",
    "idx_string",
    "idx_date",
    "idx_reference",
    "idx_composite",
)


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_resource_pk_resource", type_="foreignkey")


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_foreign_key(
                f"fk_{table}_resource_pk_resource", "resource", ["resource_pk"], ["pk"]
            )
