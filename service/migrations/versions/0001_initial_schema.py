"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 06:04:39.173104
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "resource",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_resource")),
        sa.UniqueConstraint("type", "id", name=op.f("uq_resource_type_id")),
    )
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resource_type"), ["type", "last_updated", "pk"], unique=False
        )

    op.create_table(
        "server_secret",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secret")),
    )
    op.create_table(
        "idx_composite",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=255), nullable=True),
        sa.Column("system", sa.String(length=255), nullable=True),
        sa.Column("code", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_pk"], ["resource.pk"], name=op.f("fk_idx_composite_resource_pk_resource")
        ),
    )
    with op.batch_alter_table("idx_composite", schema=None) as batch_op:
        batch_op.create_index("ix_idx_composite_resource", ["resource_pk"], unique=False)
        batch_op.create_index(
            "ix_idx_composite_value",
            ["resource_type", "param", "target_type", "target_id", "system", "code"],
            unique=False,
        )

    op.create_table(
        "idx_date",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_pk"], ["resource.pk"], name=op.f("fk_idx_date_resource_pk_resource")
        ),
    )
    with op.batch_alter_table("idx_date", schema=None) as batch_op:
        batch_op.create_index("ix_idx_date_resource", ["resource_pk"], unique=False)
        batch_op.create_index(
            "ix_idx_date_value", ["resource_type", "param", "low", "high"], unique=False
        )

    op.create_table(
        "idx_reference",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=255), nullable=True),
        sa.Column("url", sa.String(length=1024), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_pk"], ["resource.pk"], name=op.f("fk_idx_reference_resource_pk_resource")
        ),
    )
    with op.batch_alter_table("idx_reference", schema=None) as batch_op:
        batch_op.create_index("ix_idx_reference_resource", ["resource_pk"], unique=False)
        batch_op.create_index(
            "ix_idx_reference_value",
            ["resource_type", "param", "target_type", "target_id"],
            unique=False,
        )

    op.create_table(
        "idx_string",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("norm", sa.String(length=255), nullable=False),
        sa.Column("exact", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_pk"], ["resource.pk"], name=op.f("fk_idx_string_resource_pk_resource")
        ),
    )
    with op.batch_alter_table("idx_string", schema=None) as batch_op:
        batch_op.create_index("ix_idx_string_resource", ["resource_pk"], unique=False)
        batch_op.create_index(
            "ix_idx_string_value", ["resource_type", "param", "norm", "exact"], unique=False
        )

    op.create_table(
        "idx_token",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=255), nullable=True),
        sa.Column("code", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_pk"], ["resource.pk"], name=op.f("fk_idx_token_resource_pk_resource")
        ),
    )
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.create_index("ix_idx_token_resource", ["resource_pk"], unique=False)
        batch_op.create_index(
            "ix_idx_token_value", ["resource_type", "param", "system", "code"], unique=False
        )

    op.create_table(
        "idx_token_text",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("text", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_pk"], ["resource.pk"], name=op.f("fk_idx_token_text_resource_pk_resource")
        ),
    )
    with op.batch_alter_table("idx_token_text", schema=None) as batch_op:
        batch_op.create_index("ix_idx_token_text_resource", ["resource_pk"], unique=False)
        batch_op.create_index(
            "ix_idx_token_text_value", ["resource_type", "param", "text"], unique=False
        )

    op.create_table(
        "resource_version",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_pk"], ["resource.pk"], name=op.f("fk_resource_version_resource_pk_resource")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_resource_version")),
        sa.UniqueConstraint(
            "type", "id", "version", name=op.f("uq_resource_version_type_id_version")
        ),
    )
    with op.batch_alter_table("resource_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resource_version_last_updated"), ["last_updated"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_resource_version_type"), ["type", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("resource_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resource_version_type"))
        batch_op.drop_index(batch_op.f("ix_resource_version_last_updated"))

    op.drop_table("resource_version")
    with op.batch_alter_table("idx_token_text", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_token_text_value")
        batch_op.drop_index("ix_idx_token_text_resource")

    op.drop_table("idx_token_text")
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_token_value")
        batch_op.drop_index("ix_idx_token_resource")

    op.drop_table("idx_token")
    with op.batch_alter_table("idx_string", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_string_value")
        batch_op.drop_index("ix_idx_string_resource")

    op.drop_table("idx_string")
    with op.batch_alter_table("idx_reference", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_reference_value")
        batch_op.drop_index("ix_idx_reference_resource")

    op.drop_table("idx_reference")
    with op.batch_alter_table("idx_date", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_date_value")
        batch_op.drop_index("ix_idx_date_resource")

    op.drop_table("idx_date")
    with op.batch_alter_table("idx_composite", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_composite_value")
        batch_op.drop_index("ix_idx_composite_resource")

    op.drop_table("idx_composite")
    op.drop_table("server_secret")
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resource_type"))

    op.drop_table("resource")
