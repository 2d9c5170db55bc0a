"""every R4 search parameter

The seven writable types gain the R4 search parameters they lacked (address and its parts,
phone, email, telecom, gender, phonetic, deceased, language, link, communication, specialty,
location, endpoint, condition, goal, ...), and every indexed type those of its ``meta``
(``_tag``, ``_profile``, ``_security``, ``_source``). A record stored before has no index
rows for them and would never be found by them: each current record of those types is read
once and the rows of the new parameters written, by the extraction every write uses
(``service.search.extraction``). The rows of the parameters it had are left as they are. A
downgrade removes the new parameters' rows.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 04:00:00
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from service.search.extraction import extract
from service.settings import Settings

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500
_ADDRESS = ("address", "address-city", "address-state", "address-postalcode", "address-country")
_PERSON = (*_ADDRESS, "address-use", "phone", "email", "telecom", "gender", "phonetic")
_META = ("_tag", "_profile", "_security", "_source")
# The parameters this revision adds, by type (as the index rows name them).
NEW: dict[str, tuple[str, ...]] = {
    "CareTeam": _META,
    "Provenance": _META,
    "CarePlan": (
        *_META,
        "activity-reference",
        "condition",
        "encounter",
        "goal",
        "instantiates-canonical",
        "instantiates-uri",
    ),
    "Patient": (*_META, *_PERSON, "language", "link", "deceased", "death-date"),
    "Practitioner": (*_META, *_PERSON, "communication"),
    "PractitionerRole": (
        *_META,
        "phone",
        "email",
        "telecom",
        "specialty",
        "location",
        "service",
        "endpoint",
    ),
    "Organization": (*_META, *_ADDRESS, "address-use", "type", "endpoint", "phonetic"),
    "RelatedPerson": (*_META, *_PERSON, "active", "birthdate"),
}
# Patient's gender was indexed before: its rows are kept, not written twice.
_KEPT = {("Patient", "gender")}

_VALUE_COLUMNS: dict[str, tuple[str, ...]] = {
    "token": ("system", "code"),
    "token_text": ("text",),
    "string": ("norm", "exact"),
    "date": ("low", "high"),
    "reference": ("target_type", "target_id", "url"),
    "composite": ("target_type", "target_id", "system", "code"),
}


def _index_table(kind: str) -> sa.TableClause:
    return sa.table(
        f"idx_{kind}",
        sa.column("resource_pk"),
        sa.column("resource_type"),
        sa.column("param"),
        *(sa.column(name) for name in _VALUE_COLUMNS[kind]),
    )


def _added(resource_type: str) -> set[str]:
    return {p for p in NEW[resource_type] if (resource_type, p) not in _KEPT}


def upgrade() -> None:
    connection = op.get_bind()
    base_url = Settings().fhir_base_url
    resource = sa.table(
        "resource",
        sa.column("pk", sa.BigInteger),
        sa.column("type", sa.String),
        sa.column("deleted", sa.Boolean),
        sa.column("content", sa.LargeBinary),
    )
    tables = {kind: _index_table(kind) for kind in _VALUE_COLUMNS}
    last = 0
    while True:
        found = connection.execute(
            sa.select(resource.c.pk, resource.c.type, resource.c.content)
            .where(resource.c.type.in_(list(NEW)), resource.c.deleted.is_(False))
            .where(resource.c.pk > last)
            .order_by(resource.c.pk)
            .limit(_BATCH)
        ).all()
        if not found:
            break
        written: dict[str, list[dict[str, Any]]] = {}
        for pk, resource_type, content in found:
            added = _added(resource_type)
            rows = extract(resource_type, json.loads(bytes(content)), base_url)
            for kind, kind_rows in rows.items():
                written.setdefault(kind, []).extend(
                    {"resource_pk": pk, "resource_type": resource_type, **row}
                    for row in kind_rows
                    if row["param"].split(":")[0] in added
                )
        for kind, kind_rows in written.items():
            if kind_rows:
                connection.execute(sa.insert(tables[kind]), kind_rows)
        last = found[-1][0]


def downgrade() -> None:
    for kind in _VALUE_COLUMNS:
        table = _index_table(kind)
        for resource_type in NEW:
            added = _added(resource_type)
            names = sorted(added | {f"{p}:identifier" for p in added})
            op.execute(
                sa.delete(table).where(
                    table.c.resource_type == resource_type, table.c.param.in_(names)
                )
            )
