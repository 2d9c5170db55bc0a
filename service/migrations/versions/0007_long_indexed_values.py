"""long indexed values

Text a client sends was held in columns of a fixed length (``VARCHAR(255)`` and the like):
PostgreSQL refused a longer value (a 500), and the extraction cut some values short, so a
search could not find a long one whole or tell it from another with the same beginning.
Those columns become ``TEXT`` and hold every value whole. No index may hold such a value
whole (PostgreSQL refuses an index row over about 2,700 bytes): the search index tables
index the first 256 characters of each (``service.db.tables.head``), and the keyworking
projection's lookups become hash indexes on PostgreSQL. The normalised text searched by
prefix is compared in code-point order (collation "C") on PostgreSQL.

Every index of the search tables is rebuilt, which reads each table once. A downgrade fails
if a value stored since is longer than its old column.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HEAD = 256

# table: (the columns that become TEXT, with their old length; the value index's columns)
_SEARCH = {
    "idx_token": ({"system": 255, "code": 255}, ("system", "code")),
    "idx_token_text": ({"text": 255}, ("text",)),
    "idx_string": ({"norm": 255, "exact": 255}, ("norm", "exact")),
    "idx_reference": ({"url": 1024}, ()),
    "idx_composite": ({"system": 255, "code": 255}, ("target_type", "target_id", "system", "code")),
}
_NORMALISED = {("idx_token_text", "text"), ("idx_string", "norm")}
_LONG_VALUES = {"system", "code", "text", "norm", "exact"}

# table: (the columns that become TEXT, with their old length; the old and the new indexes)
_PROJECTION: dict[str, tuple[dict[str, int], dict[str, list[str]], dict[str, str]]] = {
    "kw_assignment": (
        {"patient": 512, "member": 512, "member_display": 512, "organization": 512},
        {"ix_kw_assignment_patient": ["patient", "role"], "ix_kw_assignment_member": ["member"]},
        {"ix_kw_assignment_patient": "patient", "ix_kw_assignment_member": "member"},
    ),
    "kw_role": (
        {"practitioner": 512, "organization": 512, "display": 512, "organization_display": 512},
        {"ix_kw_role_practitioner": ["practitioner"], "ix_kw_role_organization": ["organization"]},
        {"ix_kw_role_practitioner": "practitioner", "ix_kw_role_organization": "organization"},
    ),
    "kw_patient": (
        {"display": 512, "organization": 512},
        {"ix_kw_patient_organization": ["organization"]},
        {"ix_kw_patient_organization": "organization"},
    ),
    "kw_patient_identifier": (
        {"identifier": 1024},
        {"ix_kw_patient_identifier_identifier": ["identifier"]},
        {"ix_kw_patient_identifier_identifier": "identifier"},
    ),
    "kw_plan": (
        {"patient": 512, "unperformed": 1024},
        {"ix_kw_plan_patient": ["patient"]},
        {"ix_kw_plan_patient": "patient"},
    ),
}


def _text(table: str, column: str) -> sa.types.TypeEngine[str]:
    if (table, column) in _NORMALISED and op.get_bind().dialect.name == "postgresql":
        return sa.Text(collation="C")
    return sa.Text()


def _value_index(columns: Sequence[str]) -> list[str | sa.TextClause]:
    heads = [sa.text(f"substr({c}, 1, {_HEAD})") if c in _LONG_VALUES else c for c in columns]
    return ["resource_type", "param", *heads]


def upgrade() -> None:
    for table, (lengths, indexed) in _SEARCH.items():
        with op.batch_alter_table(table) as batch_op:
            if indexed:
                batch_op.drop_index(f"ix_{table}_value")
            for column, length in lengths.items():
                batch_op.alter_column(
                    column, type_=_text(table, column), existing_type=sa.String(length)
                )
        if indexed:
            op.create_index(f"ix_{table}_value", table, _value_index(indexed))
    for table, (lengths, old, new) in _PROJECTION.items():
        with op.batch_alter_table(table) as batch_op:
            for name in old:
                batch_op.drop_index(name)
            for column, length in lengths.items():
                batch_op.alter_column(column, type_=sa.Text(), existing_type=sa.String(length))
        for name, column in new.items():
            op.create_index(name, table, [column], postgresql_using="hash")


def downgrade() -> None:
    for table, (lengths, old, new) in _PROJECTION.items():
        for name in new:
            op.drop_index(name, table_name=table)
        with op.batch_alter_table(table) as batch_op:
            for column, length in lengths.items():
                batch_op.alter_column(column, type_=sa.String(length), existing_type=sa.Text())
            for name, columns in old.items():
                batch_op.create_index(name, columns)
    for table, (lengths, indexed) in _SEARCH.items():
        if indexed:
            op.drop_index(f"ix_{table}_value", table_name=table)
        with op.batch_alter_table(table) as batch_op:
            for column, length in lengths.items():
                batch_op.alter_column(column, type_=sa.String(length), existing_type=sa.Text())
            if indexed:
                batch_op.create_index(f"ix_{table}_value", ["resource_type", "param", *indexed])
