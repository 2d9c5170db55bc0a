"""The schema: resources with every version kept, and typed search-index tables.

Design (after HAPI's JPA schema, simplified):

* ``resource`` holds the current version of each resource: the canonical JSON bytes that a
  read returns as they are, plus the columns the store itself needs (version, lastUpdated,
  deleted). ``pk`` is a surrogate key the index tables point at.
* ``resource_version`` keeps every version, including deletions, for vread and history. Its
  ``seq`` is a global, increasing number: system and type history page on it as a keyset.
* One index table per search-parameter *type* (token, string, date, reference, composite),
  keyed by (resource, parameter). Rows are derived from the stored JSON on every write, inside
  the same transaction, and describe the current version only.

Times are stored as integer microseconds since the Unix epoch so that SQLite and PostgreSQL
compare, sort and page them identically.

Text a client sends is stored whole, whatever its length (``Text``), and never truncated: a
search must find a long value, and tell it from one that differs only near its end. But
PostgreSQL refuses an index row over about 2,700 bytes (a third of a page), so no index may
hold a client's text whole. The search index tables, searched by several columns and by
prefix, index the ``head`` of each such column (its first ``INDEXED_CHARACTERS``
characters, 1 KiB at most) in a btree, and a search compares the heads (which the index
answers) and then the whole values (see ``same``). The keyworking projection, looked up by
one column and only for equality, indexes it whole with a hash index on PostgreSQL, which
keeps a fixed-size hash of each value; SQLite has no such limit and no hash index, so there
the same indexes are btrees.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    func,
    literal_column,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger autoincrement is not a rowid alias in SQLite; this variant is.
BigPk = BigInteger().with_variant(Integer(), "sqlite")

# Four bytes a character at most: the heads of two columns and the short ones beside them
# stay well inside PostgreSQL's limit on an index row.
INDEXED_CHARACTERS = 256

# Normalised text, searched by prefix as a range of its head: compared in code-point order on
# PostgreSQL (collation "C"), as SQLite compares text and Python compares strings, so that the
# range's bounds, worked out in Python, mean the same to the database whatever its locale.
Normalised = Text(collation="C").with_variant(Text(), "sqlite")


def head(value: Any) -> ColumnElement[str]:
    """The part of a long text column (or of a value compared with one) that is indexed.

    The bounds are written into the statement, never bound: the databases use an expression
    index only for the very expression it was built on, and ``substr(code, $1, $2)`` is
    not ``substr(code, 1, 256)`` to them (every search scanned its whole index table)."""
    return func.substr(value, literal_column("1"), literal_column(str(INDEXED_CHARACTERS)))


def same(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    """``column`` equals ``value``, written so that the index on the column's head serves it."""
    return and_(head(column) == head(value), column == value)


resource = Table(
    "resource",
    metadata,
    Column("pk", BigPk, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", LargeBinary, nullable=False),
    UniqueConstraint("type", "id"),
    Index(None, "type", "last_updated", "pk"),
)

resource_version = Table(
    "resource_version",
    metadata,
    Column("seq", BigPk, primary_key=True, autoincrement=True),
    Column("resource_pk", BigInteger, nullable=False),  # no foreign key: migration 0005
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("method", String(8), nullable=False),
    Column("content", LargeBinary, nullable=False),
    UniqueConstraint("type", "id", "version"),
    Index(None, "type", "seq"),
    Index(None, "last_updated"),
)


def _index_table(name: str, *value_columns: Column[Any]) -> Table:
    """An index table: (resource, parameter) plus the typed value columns, a long text one
    by its head (a reference's ``url`` is not indexed)."""
    columns = [head(c) if isinstance(c.type, Text) else c for c in value_columns if c.name != "url"]
    return Table(
        name,
        metadata,
        Column("resource_pk", BigInteger, nullable=False),  # no foreign key: migration 0005
        Column("resource_type", String(64), nullable=False),
        Column("param", String(64), nullable=False),
        *value_columns,
        Index(f"ix_{name}_value", "resource_type", "param", *columns),
        Index(f"ix_{name}_resource", "resource_pk"),
    )


idx_token = _index_table(
    "idx_token",
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
)
idx_token_text = _index_table(
    "idx_token_text",
    Column("text", Normalised, nullable=False),
)
idx_string = _index_table(
    "idx_string",
    Column("norm", Normalised, nullable=False),
    Column("exact", Text, nullable=False),
)
idx_date = _index_table(
    "idx_date",
    Column("low", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
)
idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(255), nullable=True),
    Column("url", Text, nullable=True),
)
idx_composite = _index_table(
    "idx_composite",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(255), nullable=True),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
)

INDEX_TABLES: dict[str, Table] = {
    "token": idx_token,
    "token_text": idx_token_text,
    "string": idx_string,
    "date": idx_date,
    "reference": idx_reference,
    "composite": idx_composite,
}

# -- the audit journal (service.audit.journal) ---------------------------------------------
# One row per audited request, not a resource: AuditEvents are never updated or deleted, and
# writing each as a resource (a current row, a version row and seven index rows) cost more
# than the read it recorded. ``content`` is the AuditEvent as served; the entity table holds
# every ``entity.what`` reference (the request's target and its patients), which the
# ``entity`` and ``patient`` searches look up. Its index is on ``reference`` alone, so
# PostgreSQL keeps one key per reference with a list of row pointers: every audited request
# adds to it at a random place, and an index of (reference, event_id) pairs outgrew the
# database's cache (277 MB at 2,000,000 rows, against 18 MB) and made each request cost a
# third more of the database's CPU as the journal grew (see migration 0006).

audit_event = Table(
    "audit_event",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("recorded", BigInteger, nullable=False),
    Column("client_id", String(255), nullable=True),
    Column("content", LargeBinary, nullable=False),
    Index(None, "recorded", "id"),
)

audit_event_entity = Table(
    "audit_event_entity",
    metadata,
    Column("event_id", String(64), nullable=False),
    Column("reference", String(512), nullable=False),
    Index(None, "reference"),
)

server_secret = Table(
    "server_secret",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

# -- the built-in authorization server (SMART Backend Services) ---------------------------

oauth_client = Table(
    "oauth_client",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("scopes", String(4000), nullable=False),
    Column("secret_hash", String(255), nullable=True),
    Column("jwks", LargeBinary, nullable=True),
    Column("jwks_url", String(1024), nullable=True),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("created", BigInteger, nullable=False),
)

signing_key = Table(
    "signing_key",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_jwk", LargeBinary, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("retired", BigInteger, nullable=True),
)

# A client assertion's jti may be used once: the primary key refuses a replay even when two
# service processes see the same assertion at the same moment.
used_assertion = Table(
    "used_assertion",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires", BigInteger, nullable=False),
    Index(None, "expires"),
)

# -- the keyworking projection (fhir_mappings.keyworking.projection) ------------------------
# Derived on write from CareTeam, PractitionerRole, Patient and CarePlan, in the write's
# transaction; the keyworking operations read these and never scan resources. Periods are
# half-open [starts, ends) in epoch microseconds, NULL for an open bound.


def _by_hash(column: str) -> Index:
    """An index for looking up a projection column's whole value, however long (see above)."""
    return Index(None, column, postgresql_using="hash")


kw_assignment = Table(
    "kw_assignment",
    metadata,
    Column("pk", BigPk, primary_key=True, autoincrement=True),
    Column("care_team", String(64), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("patient", Text, nullable=False),
    Column("role", String(64), nullable=False),
    Column("member", Text, nullable=False),
    Column("member_display", Text, nullable=True),
    Column("organization", Text, nullable=True),
    Column("starts", BigInteger, nullable=True),
    Column("ends", BigInteger, nullable=True),
    Column("team_active", Boolean, nullable=False),
    Column("role_concepts", LargeBinary, nullable=False),
    _by_hash("patient"),
    Index(None, "care_team"),
    _by_hash("member"),
)

kw_role = Table(
    "kw_role",
    metadata,
    Column("reference", String(512), primary_key=True),
    Column("practitioner", Text, nullable=True),
    Column("organization", Text, nullable=True),
    Column("active", Boolean, nullable=False),
    Column("display", Text, nullable=True),
    Column("organization_display", Text, nullable=True),
    Column("telecom", LargeBinary, nullable=False),
    Column("leave", LargeBinary, nullable=False),
    _by_hash("practitioner"),
    _by_hash("organization"),
)

kw_patient = Table(
    "kw_patient",
    metadata,
    Column("reference", String(512), primary_key=True),
    Column("display", Text, nullable=True),
    Column("organization", Text, nullable=True),
    _by_hash("organization"),
)

kw_patient_identifier = Table(
    "kw_patient_identifier",
    metadata,
    Column("patient", String(512), ForeignKey("kw_patient.reference"), nullable=False),
    Column("identifier", Text, nullable=False),
    _by_hash("identifier"),
    Index(None, "patient"),
)

kw_plan = Table(
    "kw_plan",
    metadata,
    Column("care_plan", String(64), primary_key=True),
    Column("patient", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("review_due", BigInteger, nullable=True),
    Column("unperformed", Text, nullable=False),
    _by_hash("patient"),
)
