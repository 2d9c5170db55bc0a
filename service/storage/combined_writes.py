"""A write of resource versions as one PostgreSQL statement.

A version is a resource row, a version row and index rows in up to six tables. Written one
statement per table (and a COPY costs two round trips), a PUT spent most of its time
waiting on the database, and the Provenance it records as long again. Here every table is
written by a data-modifying CTE over arrays, all in one statement: the resource rows come
first (inserted, or the one updated) as ``new``, and the version and index rows join onto
them, so the content travels once and the row keys never come back to Python. Sub-statements
of one statement share a snapshot, so replacing a resource's index rows (delete the old,
insert the new) is safe within it. https://www.postgresql.org/docs/current/queries-with.html
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


def first_versions(
    versions: Sequence[Version], moments: Sequence[int], contents: Sequence[bytes]
) -> tuple[TextClause, dict[str, Any]]:
    """Version 1 of resources not stored before; a duplicate (type, id) is an IntegrityError."""
    params = _version_params(versions)
    params.update(moments=list(moments), contents=list(contents))
    kinds = _kinds(params, versions)
    return _statement(_FIRST, (), kinds), params


def next_version(
    pk: int,
    version: Version,
    *,
    number: int,
    moment: int,
    deleted: bool,
    content: bytes,
    stale: Sequence[str],
    dropped: Sequence[str],
) -> tuple[TextClause, dict[str, Any]]:
    """A new version of the resource row ``pk``: index rows of the ``dropped`` kinds are
    deleted, and the version's rows of the ``stale`` kinds inserted (other kinds are kept)."""
    params = _version_params([version])
    params.update(pk=pk, number=number, moment=moment, deleted=deleted, content=content)
    kinds = _kinds(params, [version], only=stale)
    return _statement(_NEXT, tuple(dropped), kinds), params


_FIRST = (
    "new AS (INSERT INTO resource (type, id, version, last_updated, deleted, content)"
    " SELECT t, i, 1, m, false, c FROM unnest(CAST(:types AS TEXT[]), CAST(:ids AS TEXT[]),"
    " CAST(:moments AS BIGINT[]), CAST(:contents AS BYTEA[])) AS u(t, i, m, c)"
    " RETURNING pk, type, id, version, last_updated, deleted, content)"
)
_NEXT = (
    "new AS (UPDATE resource SET version = :number, last_updated = :moment,"
    " deleted = :deleted, content = :content WHERE pk = :pk"
    " RETURNING pk, type, id, version, last_updated, deleted, content)"
)
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


def _kinds(
    params: dict[str, Any], versions: Sequence[Version], only: Sequence[str] | None = None
) -> tuple[str, ...]:
    """Add the index rows' arrays to ``params``; the kinds that have rows."""
    kinds = []
    for kind, table in INDEX_TABLES.items():
        if only is not None and kind not in only:
            continue
        owned = [(v, row) for v in versions for row in v.index_rows.get(kind, ())]
        if not owned:
            continue
        kinds.append(kind)
        params[f"{kind}__type"] = [v.type for v, _ in owned]
        params[f"{kind}__id"] = [v.id for v, _ in owned]
        for name in _values(table):
            params[f"{kind}_{name}"] = [row.get(name) for _, row in owned]
    return tuple(kinds)


def _values(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.c if c.name not in ("resource_pk", "resource_type"))


@cache
def _statement(rows: str, dropped: tuple[str, ...], kinds: tuple[str, ...]) -> TextClause:
    ctes = [rows, _VERSIONS]
    for kind in dropped:
        ctes.append(
            f"{kind}_stale AS (DELETE FROM {INDEX_TABLES[kind].name}"
            " WHERE resource_pk = (SELECT pk FROM new))"
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
    return text("WITH " + ", ".join(ctes) + " SELECT count(*) FROM new")
