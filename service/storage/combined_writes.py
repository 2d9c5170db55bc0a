"""A write of resource versions as one PostgreSQL statement.

A version is a resource row, a version row and index rows in up to six tables. Written one
statement per table (and a COPY costs two round trips), a PUT spent most of its time
waiting on the database, and the Provenance it records as long again. Here every table is
written by a data-modifying CTE over arrays, all in one statement, the Provenance included:
the resource rows come first (the one updated, the ones inserted) as ``new``, and the
version and index rows join onto them, so the content travels once and the row keys never
come back to Python. Sub-statements of one statement share a snapshot, so replacing a
resource's index rows (delete the old, insert the new) is safe within it.
https://www.postgresql.org/docs/current/queries-with.html

An update names the version it replaces and writes nothing (no row of any table) when the
row is at another: the statement is safe without a lock held since the version was read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary, String, Table, TextClause, text

from service.db.tables import INDEX_TABLES

Rows = Mapping[str, Sequence[Mapping[str, Any]]]  # index rows by kind

_ARRAY_TYPES = (
    (Boolean, "BOOLEAN[]"),
    (LargeBinary, "BYTEA[]"),
    (BigInteger, "BIGINT[]"),
    (Integer, "INTEGER[]"),
    (String, "TEXT[]"),
)


def array_type(table: Table, name: str) -> str:
    """The PostgreSQL array type a column's values travel in."""
    column_type = table.c[name].type
    return next(array for kind, array in _ARRAY_TYPES if isinstance(column_type, kind))


@dataclass(frozen=True)
class Version:
    """What one version writes besides its resource row's own columns."""

    type: str
    id: str
    method: str
    index_rows: Rows


@dataclass(frozen=True)
class First:
    """Version 1 of a resource not stored before."""

    version: Version
    moment: int
    content: bytes


@dataclass(frozen=True)
class TableRows:
    """Rows of another table to insert with the versions (a projection of them), all with
    the same keys."""

    table: Table
    rows: Sequence[Mapping[str, Any]]


def first_versions(
    firsts: Sequence[First], extra: Sequence[TableRows] = ()
) -> tuple[TextClause, dict[str, Any]]:
    """Version 1 of resources not stored before, and the ``extra`` rows; a duplicate
    (type, id) is an IntegrityError. The statement answers how many versions it stored."""
    params = _version_params([f.version for f in firsts])
    params.update(_first_params(firsts))
    kinds = _kinds(params, [(f.version, None) for f in firsts])
    return _statement(False, True, (), kinds, _extra(params, extra)), params


def next_version(
    pk: int,
    version: Version,
    *,
    replacing: int,
    number: int,
    moment: int,
    deleted: bool,
    content: bytes,
    stale: Sequence[str],
    dropped: Sequence[str],
    companions: Sequence[First] = (),
    extra: Sequence[TableRows] = (),
) -> tuple[TextClause, dict[str, Any]]:
    """A new version of the resource row ``pk``, written only while that row is at version
    ``replacing``: index rows of the ``dropped`` kinds are deleted, and the version's rows of
    the ``stale`` kinds inserted (other kinds are kept). The ``companions`` are stored with
    it, or not at all, and so are the ``extra`` rows. The statement answers 1 when it wrote,
    0 when the row had moved on.
    """
    params = _version_params([version, *(c.version for c in companions)])
    params.update(
        pk=pk, replacing=replacing, number=number, moment=moment, deleted=deleted, content=content
    )
    if companions:
        params.update(_first_params(companions))
    owned = [(version, stale), *((c.version, None) for c in companions)]
    kinds = _kinds(params, owned)
    return _statement(True, bool(companions), tuple(dropped), kinds, _extra(params, extra)), params


_FIRST = (
    "ins AS (INSERT INTO resource (type, id, version, last_updated, deleted, content)"
    " SELECT t, i, 1, m, false, c FROM unnest(CAST(:first_types AS TEXT[]),"
    " CAST(:first_ids AS TEXT[]), CAST(:moments AS BIGINT[]), CAST(:contents AS BYTEA[]))"
    " AS u(t, i, m, c){guard} RETURNING {returned})"
)
_NEXT = (
    "upd AS (UPDATE resource SET version = :number, last_updated = :moment,"
    " deleted = :deleted, content = :content WHERE pk = :pk AND version = :replacing"
    " RETURNING {returned})"
)
_RETURNED = "pk, type, id, version, last_updated, deleted, content"
_VERSIONS = (
    "versions AS (INSERT INTO resource_version"
    " (resource_pk, type, id, method, version, last_updated, deleted, content)"
    " SELECT new.pk, new.type, new.id, u.method, new.version, new.last_updated, new.deleted,"
    " new.content FROM new JOIN unnest(CAST(:types AS TEXT[]), CAST(:ids AS TEXT[]),"
    " CAST(:methods AS TEXT[])) AS u(t, i, method) ON new.type = u.t AND new.id = u.i)"
)


def _version_params(versions: Sequence[Version]) -> dict[str, Any]:
    return {
        "types": [v.type for v in versions],
        "ids": [v.id for v in versions],
        "methods": [v.method for v in versions],
    }


def _first_params(firsts: Sequence[First]) -> dict[str, Any]:
    return {
        "first_types": [f.version.type for f in firsts],
        "first_ids": [f.version.id for f in firsts],
        "moments": [f.moment for f in firsts],
        "contents": [f.content for f in firsts],
    }


def _kinds(
    params: dict[str, Any], owned: Sequence[tuple[Version, Sequence[str] | None]]
) -> tuple[str, ...]:
    """Add the index rows' arrays to ``params``: each version's rows of the kinds it names
    (None: all); the kinds that have rows."""
    kinds = []
    for kind, table in INDEX_TABLES.items():
        rows = [
            (v, row)
            for v, only in owned
            if only is None or kind in only
            for row in v.index_rows.get(kind, ())
        ]
        if not rows:
            continue
        kinds.append(kind)
        params[f"{kind}__type"] = [v.type for v, _ in rows]
        params[f"{kind}__id"] = [v.id for v, _ in rows]
        for name in _values(table):
            params[f"{kind}_{name}"] = [row.get(name) for _, row in rows]
    return tuple(kinds)


def _extra(
    params: dict[str, Any], extra: Sequence[TableRows]
) -> tuple[tuple[Table, tuple[str, ...]], ...]:
    """Add the extra rows' arrays to ``params``; (table, columns) of each batch of rows."""
    shapes: list[tuple[Table, tuple[str, ...]]] = []
    for batch in extra:
        if batch.rows:
            names = tuple(batch.rows[0])
            for name in names:
                params[f"x{len(shapes)}_{name}"] = [row[name] for row in batch.rows]
            shapes.append((batch.table, names))
    return tuple(shapes)


def _values(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.c if c.name not in ("resource_pk", "resource_type"))


@cache
def _statement(
    updates: bool,
    inserts: bool,
    dropped: tuple[str, ...],
    kinds: tuple[str, ...],
    extra: tuple[tuple[Table, tuple[str, ...]], ...] = (),
) -> TextClause:
    """``updates``: one row updated (``upd``); ``inserts``: first versions (``ins``), after
    the update when there is one and only if it wrote. ``new`` is every row written. Each
    ``extra`` (table, columns) inserts rows of another table, only if the update wrote."""
    ctes = []
    only_if = " WHERE EXISTS (SELECT 1 FROM upd)" if updates else ""
    if updates:
        ctes.append(_NEXT.format(returned=_RETURNED))
    if inserts:
        ctes.append(_FIRST.format(guard=only_if, returned=_RETURNED))
    parts = (["SELECT * FROM upd"] if updates else []) + (["SELECT * FROM ins"] if inserts else [])
    ctes.append(f"new AS ({' UNION ALL '.join(parts)})")
    ctes.append(_VERSIONS)
    for kind in dropped:
        ctes.append(
            f"{kind}_stale AS (DELETE FROM {INDEX_TABLES[kind].name}"
            " WHERE resource_pk = (SELECT pk FROM upd))"
        )
    for kind in kinds:
        table = INDEX_TABLES[kind]
        names = _values(table)
        columns = ", ".join(names)
        arrays = ", ".join(f"CAST(:{kind}_{n} AS {array_type(table, n)})" for n in names)
        ctes.append(
            f"{kind}_rows AS (INSERT INTO {table.name} (resource_pk, resource_type, {columns})"
            f" SELECT new.pk, new.type, {', '.join(f'u.{n}' for n in names)} FROM new"
            f" JOIN unnest(CAST(:{kind}__type AS TEXT[]), CAST(:{kind}__id AS TEXT[]),"
            f" {arrays}) AS u(t, i, {columns}) ON new.type = u.t AND new.id = u.i)"
        )
    for n, (table, names) in enumerate(extra):
        arrays = ", ".join(f"CAST(:x{n}_{name} AS {array_type(table, name)})" for name in names)
        columns = ", ".join(f'"{name}"' for name in names)
        ctes.append(
            f'x{n} AS (INSERT INTO "{table.name}" ({columns})'
            f" SELECT * FROM unnest({arrays}) AS u({columns}){only_if})"
        )
    counted = "upd" if updates else "new"
    return text("WITH " + ", ".join(ctes) + f" SELECT count(*) FROM {counted}")
