"""keyworking projection

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 06:44:06.214595
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kw_assignment",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("care_team", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("patient", sa.String(length=512), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("member", sa.String(length=512), nullable=False),
        sa.Column("member_display", sa.String(length=512), nullable=True),
        sa.Column("organization", sa.String(length=512), nullable=True),
        sa.Column("starts", sa.BigInteger(), nullable=True),
        sa.Column("ends", sa.BigInteger(), nullable=True),
        sa.Column("team_active", sa.Boolean(), nullable=False),
        sa.Column("role_concepts", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_kw_assignment")),
    )
    with op.batch_alter_table("kw_assignment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kw_assignment_care_team"), ["care_team"], unique=False)
        batch_op.create_index(batch_op.f("ix_kw_assignment_member"), ["member"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_kw_assignment_patient"), ["patient", "role"], unique=False
        )

    op.create_table(
        "kw_patient",
        sa.Column("reference", sa.String(length=512), nullable=False),
        sa.Column("display", sa.String(length=512), nullable=True),
        sa.Column("organization", sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint("reference", name=op.f("pk_kw_patient")),
    )
    with op.batch_alter_table("kw_patient", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_kw_patient_organization"), ["organization"], unique=False
        )

    op.create_table(
        "kw_plan",
        sa.Column("care_plan", sa.String(length=64), nullable=False),
        sa.Column("patient", sa.String(length=512), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("review_due", sa.BigInteger(), nullable=True),
        sa.Column("unperformed", sa.String(length=1024), nullable=False),
        sa.PrimaryKeyConstraint("care_plan", name=op.f("pk_kw_plan")),
    )
    with op.batch_alter_table("kw_plan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kw_plan_patient"), ["patient"], unique=False)

    op.create_table(
        "kw_role",
        sa.Column("reference", sa.String(length=512), nullable=False),
        sa.Column("practitioner", sa.String(length=512), nullable=True),
        sa.Column("organization", sa.String(length=512), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("display", sa.String(length=512), nullable=True),
        sa.Column("organization_display", sa.String(length=512), nullable=True),
        sa.Column("telecom", sa.LargeBinary(), nullable=False),
        sa.Column("leave", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("reference", name=op.f("pk_kw_role")),
    )
    with op.batch_alter_table("kw_role", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kw_role_organization"), ["organization"], unique=False)
        batch_op.create_index(batch_op.f("ix_kw_role_practitioner"), ["practitioner"], unique=False)

    op.create_table(
        "kw_patient_identifier",
        sa.Column("patient", sa.String(length=512), nullable=False),
        sa.Column("identifier", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient"],
            ["kw_patient.reference"],
            name=op.f("fk_kw_patient_identifier_patient_kw_patient"),
        ),
    )
    with op.batch_alter_table("kw_patient_identifier", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_kw_patient_identifier_identifier"), ["identifier"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_kw_patient_identifier_patient"), ["patient"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("kw_patient_identifier", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kw_patient_identifier_patient"))
        batch_op.drop_index(batch_op.f("ix_kw_patient_identifier_identifier"))

    op.drop_table("kw_patient_identifier")
    with op.batch_alter_table("kw_role", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kw_role_practitioner"))
        batch_op.drop_index(batch_op.f("ix_kw_role_organization"))

    op.drop_table("kw_role")
    with op.batch_alter_table("kw_plan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kw_plan_patient"))

    op.drop_table("kw_plan")
    with op.batch_alter_table("kw_patient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kw_patient_organization"))

    op.drop_table("kw_patient")
    with op.batch_alter_table("kw_assignment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kw_assignment_patient"))
        batch_op.drop_index(batch_op.f("ix_kw_assignment_member"))
        batch_op.drop_index(batch_op.f("ix_kw_assignment_care_team"))

    op.drop_table("kw_assignment")
