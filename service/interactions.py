"""The FHIR interactions on resources, free of HTTP: read, vread, create, update, patch,
delete (plain and conditional) and history. Routers translate requests into these calls.

Every write validates once, checks its references, and either stores a whole new version
with its index rows (and what the write hooks store beside it) or nothing at all. A reference
to a hosted type must resolve; one to an R4 type not hosted here names another system's
record and is kept as sent. A reference check takes no lock on its targets, inside a
transaction or not: a target deleted by a concurrent write may still be named by a version
stored at the same moment.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

import jsonpatch
import orjson
from sqlalchemy import Integer, literal_column, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_mappings import invariants, model
from fhir_mappings.empty_elements import normalised
from fhir_mappings.issues import Issue
from fhir_mappings.resource_types import R4_RESOURCE_TYPES
from service.audit import journal
from service.auth.access import current_access
from service.auth.reach import Reach
from service.db.engine import Database
from service.db.tables import resource
from service.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from service.ids import new_id
from service.placeholders import creatable, placeholder
from service.registry import RESOURCE_TYPES
from service.search import criteria as search_criteria
from service.search import sql as search_sql
from service.search.extraction import extract, split_reference
from service.storage import repository
from service.storage.repository import HistoryQuery, Stored
from service.write_hooks import WriteHook, Written, checked, need_database, run_hooks

Clock = Callable[[], int]
_SERVER_META = ("versionId", "lastUpdated")
# A reference with a scheme names another server's resource (or a urn), not one of ours.
_ABSOLUTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.\-]*://|urn:)")
# The type a RESTful absolute URL names: .../Type/id, or .../Type/id/_history/vid.
_RESTFUL_TYPE = re.compile(
    r"/([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
# R4 Resource.id: https://hl7.org/fhir/R4/datatypes.html#id
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# Tries of an update without a lock before it takes one: each lost race means another
# writer changed the same resource between this one's read and write.
_UNLOCKED_ATTEMPTS = 3


def system_clock() -> int:
    """Now, in epoch microseconds, truncated to the millisecond that meta.lastUpdated shows."""
    return time.time_ns() // 1_000_000 * 1000


@dataclass
class Transaction:
    """One bundle's database transaction, shared by all of its entries.

    ``pending`` holds the resources the bundle creates, so an entry may reference one that a
    later entry writes: R4 resolves a transaction's references as a whole.
    """

    connection: AsyncConnection
    pending: set[tuple[str, str]] = field(default_factory=set)


@dataclass(frozen=True)
class Creation:
    """A write that creates a resource under an id known to be free: a create (POST) or an
    update-as-create (PUT), as a transaction Bundle hands them to ``create_all``."""

    resource_type: str
    resource_id: str
    body: dict[str, Any]
    method: str

    @classmethod
    def post(cls, resource_type: str, resource_id: str, body: dict[str, Any]) -> Creation:
        return cls(resource_type, resource_id, _without_id(body), "POST")

    @classmethod
    def put(cls, resource_type: str, resource_id: str, body: dict[str, Any]) -> Creation:
        return cls(resource_type, resource_id, {**body, "id": resource_id}, "PUT")

    @property
    def url_id(self) -> str | None:
        """The id the request URL names (a PUT's), which the body must agree with."""
        return self.resource_id if self.method == "PUT" else None


@dataclass(frozen=True)
class Outcome:
    stored: Stored
    created: bool
    changed: bool = True  # False when the write matched what was stored (no new version)


class Interactions:
    def __init__(
        self,
        database: Database,
        base_url: str,
        *,
        clock: Clock = system_clock,
        ids: Callable[[], str] = new_id,
        hooks: Sequence[WriteHook] = (),
        placeholders: bool = False,
    ) -> None:
        self.database = database
        self.base_url = base_url
        self.clock = clock
        self.ids = ids
        self.hooks = tuple(hooks)
        # Missing targets of references get placeholders (``service.placeholders``); they are
        # written in the write's transaction, so the writes that have none are not taken.
        self.placeholders = placeholders

    # -- reads ---------------------------------------------------------------------------

    async def read(
        self, resource_type: str, resource_id: str, *, within: Transaction | None = None
    ) -> Stored:
        found = await self._current(resource_type, resource_id, within)
        if found is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        stored = found[1]
        if stored.deleted:
            raise Gone(
                f"{resource_type}/{resource_id} was deleted",
                headers={"ETag": stored.etag},
            )
        return stored

    async def read_any(self, resource_type: str, resource_id: str) -> Stored:
        """The current version even when it is a deletion (history still answers for it)."""
        found = await self._current(resource_type, resource_id, None)
        if found is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        return found[1]

    async def vread(
        self,
        resource_type: str,
        resource_id: str,
        version: str,
        *,
        within: Transaction | None = None,
    ) -> Stored:
        if not (version.isascii() and version.isdigit()) or len(version) > 18:
            raise NotFound(f"Version '{version}' of {resource_type}/{resource_id} is not known")
        async with self._reading(within) as connection:
            if resource_type == journal.AUDIT_EVENT:  # each is its one and only version
                found = await journal.stored(self.database, resource_id, connection)
                stored = found if version == "1" else None
            else:
                stored = await repository.version(
                    connection, resource_type, resource_id, int(version)
                )
        if stored is None:
            raise NotFound(f"Version {version} of {resource_type}/{resource_id} is not known")
        if stored.deleted:
            raise Gone(f"Version {version} of {resource_type}/{resource_id} is a deletion")
        return stored

    async def history(self, query: HistoryQuery) -> tuple[list[tuple[int, Stored]], bool]:
        async with self.database.read() as connection:
            return await repository.history(connection, query)

    # -- writes --------------------------------------------------------------------------

    async def create(
        self,
        resource_type: str,
        body: dict[str, Any],
        *,
        if_none_exist: str | None = None,
        assigned_id: str | None = None,
        within: Transaction | None = None,
    ) -> Outcome:
        body = _without_id(body)
        sites = self._validated(resource_type, body, None)
        if (
            if_none_exist is None
            and within is None
            and not self.database.is_sqlite
            and not self.placeholders
        ):
            resource_id = assigned_id or self.ids()
            write, batch = self._next_version(resource_type, resource_id, body, None, "POST")
            if not need_database(self.hooks, batch):
                # As an update that no hook needs a transaction for (``_update_alone``):
                # the reference check, then one statement that writes everything.
                async with self.database.one_connection():
                    await self._check_references(None, [(resource_type, resource_id, sites)], None)
                    write = self._with_companions(write, batch)
                    with _created_concurrently(write):
                        stored = await repository.save_alone(self.database, write)
                return Outcome(stored, created=True)
        async with self._writing(within) as connection:
            if if_none_exist is not None:
                match = await self.single_match(connection, resource_type, if_none_exist)
                if match is not None:
                    return Outcome(match[1], created=False, changed=False)
            resource_id = assigned_id or self.ids()
            await self._check_references(connection, [(resource_type, resource_id, sites)], within)
            stored = await self._save(connection, resource_type, resource_id, body, None, "POST")
        return Outcome(stored, created=True)

    async def create_all(self, creations: Sequence[Creation], within: Transaction) -> list[Stored]:
        """Store many new resources in the bundle's transaction, one statement per table.

        The same steps as ``create`` and an update that creates, each done once for the whole
        batch: every body validated, every reference checked in one query, the rows inserted
        together with the hooks' companions (``repository.insert_new``) and the write hooks
        run over the batch. Each resource appears at most once and its id must not be in use
        (a concurrent create of the same id is a 409, as for a single write).
        """
        sites = [self._validated(c.resource_type, c.body, c.url_id) for c in creations]
        await self._check_references(
            within.connection,
            [(c.resource_type, c.resource_id, s) for c, s in zip(creations, sites, strict=True)],
            within,
        )
        return await self._insert_first(within.connection, creations)

    async def _insert_first(
        self, connection: AsyncConnection, creations: Sequence[Creation]
    ) -> list[Stored]:
        """The first versions of ``creations`` inserted together with the hooks' companions
        (``repository.insert_new``), then the write hooks run over them as one batch."""
        new = [self._first_version(c) for c in creations]
        batch = [Written(n.stored, c.body, None) for n, c in zip(new, creations, strict=True)]
        companions, rows = checked(self.hooks, batch)
        try:
            await repository.insert_new(connection, new + companions, rows)
        except IntegrityError as error:
            raise Conflict("A resource it creates was created concurrently; retry") from error
        await run_hooks(self.hooks, connection, batch)
        return [n.stored for n in new]

    async def update(
        self,
        resource_type: str,
        resource_id: str,
        body: dict[str, Any],
        *,
        if_match: int | None = None,
        within: Transaction | None = None,
    ) -> Outcome:
        sites = self._validated(resource_type, body, resource_id)
        if within is None and not self.database.is_sqlite and not self.placeholders:
            outcome = await self._update_alone(resource_type, resource_id, body, sites, if_match)
            if outcome is not None:
                return outcome
        async with self._writing(within) as connection:
            previous = await repository.current(connection, resource_type, resource_id, lock=True)
            return await self._update_locked(
                connection, resource_type, resource_id, body, sites, previous, if_match, within
            )

    async def _update_alone(
        self,
        resource_type: str,
        resource_id: str,
        body: dict[str, Any],
        sites: list[model.ReferenceSite],
        if_match: int | None,
    ) -> Outcome | None:
        """PostgreSQL: an update of a live resource that no hook needs a transaction for
        (a change keyworking ignores, as most are), with no transaction at all.

        The version is read, the new one prepared, and written by one statement only if the
        row is still at the version read (``repository.save_alone``): two round trips where
        BEGIN, a locked read, the reference check, the write, the Provenance and COMMIT were
        six. A write that lost a race is prepared again from what won. None: take the locked
        way (a create, a hook with work to do in a transaction, or a resource too contended).
        """
        async with self.database.one_connection():
            for _ in range(_UNLOCKED_ATTEMPTS):
                previous = await repository.current_now(self.database, resource_type, resource_id)
                if previous is None or previous[1].deleted:
                    return None
                self._check_version(previous[1], if_match)
                if _same_content(previous[1], body, resource_id):
                    return Outcome(previous[1], created=False, changed=False)
                write, batch = self._next_version(resource_type, resource_id, body, previous, "PUT")
                if need_database(self.hooks, batch):
                    return None
                await self._check_references(None, [(resource_type, resource_id, sites)], None)
                write = self._with_companions(write, batch)
                try:
                    stored = await repository.save_alone(self.database, write)
                except repository.VersionMoved:
                    continue
                return Outcome(stored, created=False)
        return None

    async def conditional_update(
        self,
        resource_type: str,
        query: str,
        body: dict[str, Any],
        *,
        if_match: int | None,
        within: Transaction | None = None,
    ) -> Outcome:
        body_id = body.get("id")
        sites = self._validated(resource_type, body, body_id if isinstance(body_id, str) else None)
        async with self._writing(within) as connection:
            match = await self.single_match(connection, resource_type, query)
            if match is not None:
                target = match[1].id
                if isinstance(body_id, str) and body_id != target:
                    raise BadRequest(
                        f"The body's id '{body_id}' is not the matching resource's id '{target}'",
                        expression=(f"{resource_type}.id",),
                    )
            else:
                target = body_id if isinstance(body_id, str) else self.ids()
            previous = await repository.current(connection, resource_type, target, lock=True)
            if match is None and previous is not None and not previous[1].deleted:
                # No match plus the id of a live resource is update-as-create only in name:
                # it would overwrite a resource the criteria say is not the one meant.
                raise Conflict(
                    f"{resource_type}/{target} exists but does not match '{query}'",
                    expression=(f"{resource_type}.id",),
                )
            return await self._update_locked(
                connection, resource_type, target, body, sites, previous, if_match, within
            )

    async def patch(
        self,
        resource_type: str,
        resource_id: str,
        operations: Any,
        *,
        if_match: int | None = None,
        within: Transaction | None = None,
    ) -> Outcome:
        if not isinstance(operations, list):
            raise BadRequest("A JSON Patch document is an array of operations", code="structure")
        async with self._writing(within) as connection:
            previous = await repository.current(connection, resource_type, resource_id, lock=True)
            if previous is None:
                raise NotFound(f"{resource_type}/{resource_id} is not known")
            if previous[1].deleted:
                raise Gone(f"{resource_type}/{resource_id} was deleted")
            # A patch is written against the version the client saw: a stale If-Match is
            # answered 412 before the patch is tried, not 400/422 for a patch meant for it.
            self._check_version(previous[1], if_match)
            try:
                patched = jsonpatch.apply_patch(orjson.loads(previous[1].content), operations)
            except jsonpatch.InvalidJsonPatch as error:
                raise BadRequest(f"Malformed JSON Patch: {error}", code="structure") from error
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                raise Unprocessable(
                    f"The patch cannot be applied: {error}", code="processing"
                ) from error
            except (TypeError, KeyError, ValueError) as error:
                raise BadRequest(f"Malformed JSON Patch: {error}", code="structure") from error
            if not isinstance(patched, dict):
                raise Unprocessable("The patch does not leave a resource", code="processing")
            sites = self._validated(resource_type, patched, resource_id)
            return await self._update_locked(
                connection, resource_type, resource_id, patched, sites, previous, if_match, within
            )

    async def delete(
        self,
        resource_type: str,
        resource_id: str,
        *,
        if_match: int | None = None,
        within: Transaction | None = None,
    ) -> Stored | None:
        async with self._writing(within) as connection:
            previous = await repository.current(connection, resource_type, resource_id, lock=True)
            if previous is None:
                raise NotFound(f"{resource_type}/{resource_id} is not known")
            self._check_version(previous[1], if_match)
            if previous[1].deleted:
                return None
            return await self._delete_locked(connection, previous)

    async def conditional_delete(
        self, resource_type: str, query: str, *, within: Transaction | None = None
    ) -> Stored | None:
        async with self._writing(within) as connection:
            match = await self.single_match(connection, resource_type, query)
            if match is None:
                return None
            return await self._delete_locked(connection, match)

    # -- internals -----------------------------------------------------------------------

    @asynccontextmanager
    async def _reading(self, within: Transaction | None) -> AsyncIterator[AsyncConnection]:
        """Inside a bundle, reads see the bundle's own writes."""
        if within is not None:
            yield within.connection
            return
        async with self.database.read() as connection:
            yield connection

    async def _current(
        self, resource_type: str, resource_id: str, within: Transaction | None
    ) -> tuple[int, Stored] | None:
        """Inside a bundle, its own writes; else one statement with no transaction around it."""
        if resource_type == journal.AUDIT_EVENT:
            event = await journal.stored(
                self.database, resource_id, within.connection if within else None
            )
            return None if event is None else (0, event)
        if within is not None:
            return await repository.current(within.connection, resource_type, resource_id)
        return await repository.current_now(self.database, resource_type, resource_id)

    @asynccontextmanager
    async def _writing(self, within: Transaction | None) -> AsyncIterator[AsyncConnection]:
        """The bundle's transaction when inside one, else a write transaction of its own."""
        if within is not None:
            yield within.connection
            return
        async with self.database.write() as connection:
            yield connection

    def _validated(
        self, resource_type: str, body: dict[str, Any], resource_id: str | None
    ) -> list[model.ReferenceSite]:
        if body.get("resourceType") != resource_type:
            raise BadRequest(
                f"The body is a {body.get('resourceType')!r}, the URL names {resource_type}",
                expression=("resourceType",),
            )
        if resource_id is not None and not _FHIR_ID.fullmatch(resource_id):
            # A PUT chooses the id: refuse what FHIR forbids (and what the id column cannot
            # hold) as 400, rather than store an unreferenceable id or fail in the database.
            raise BadRequest(
                f"{resource_id!r} is not a FHIR id (1-64 of A-Z, a-z, 0-9, '-', '.')",
                expression=(f"{resource_type}.id",),
            )
        if resource_id is not None and body.get("id") not in (None, resource_id):
            raise BadRequest(
                f"The body's id {body.get('id')!r} does not match the URL's id {resource_id!r}",
                expression=(f"{resource_type}.id",),
            )
        cleared = normalised(body)
        if cleared is not body:
            # R4 JSON has no empty elements: they are left out once, here, so what is
            # validated, indexed and stored is the same (docs/adr/0002-no-empty-elements.md).
            body.clear()
            body.update(cleared)
        issues, sites = model.validate(resource_type, body)
        if issues:
            raise BadRequest(issues=issues)
        broken = invariants.check(resource_type, body)
        if broken:
            raise Unprocessable(issues=broken)
        return sites

    async def _update_locked(
        self,
        connection: AsyncConnection,
        resource_type: str,
        resource_id: str,
        body: dict[str, Any],
        sites: list[model.ReferenceSite],
        previous: tuple[int, Stored] | None,
        if_match: int | None,
        within: Transaction | None,
    ) -> Outcome:
        if previous is None:
            if if_match is not None:
                raise PreconditionFailed(
                    f"If-Match names version {if_match} but {resource_type}/{resource_id} "
                    "does not exist"
                )
        else:
            self._check_version(previous[1], if_match)
            if not previous[1].deleted and _same_content(previous[1], body, resource_id):
                return Outcome(previous[1], created=False, changed=False)
        await self._check_references(connection, [(resource_type, resource_id, sites)], within)
        created = previous is None or previous[1].deleted
        stored = await self._save(connection, resource_type, resource_id, body, previous, "PUT")
        return Outcome(stored, created=created)

    @staticmethod
    def _check_version(stored: Stored, if_match: int | None) -> None:
        if if_match is not None and if_match != stored.version:
            raise PreconditionFailed(
                f"If-Match names version {if_match} but {stored.reference} is at version "
                f"{stored.version}",
                code="conflict",
            )

    async def _save(
        self,
        connection: AsyncConnection,
        resource_type: str,
        resource_id: str,
        body: dict[str, Any] | None,
        previous: tuple[int, Stored] | None,
        method: str,
    ) -> Stored:
        """Store the next version in the caller's transaction, the previous one locked, with
        what the hooks store and do beside it."""
        write, batch = self._next_version(resource_type, resource_id, body, previous, method)
        write = self._with_companions(write, batch)
        with _created_concurrently(write):
            stored = await repository.save(connection, write)
        await run_hooks(self.hooks, connection, batch)
        return stored

    def _with_companions(
        self, write: repository.NextVersion, batch: list[Written]
    ) -> repository.NextVersion:
        """The hooks' checks of the batch passed, the write with what they store beside it."""
        companions, rows = checked(self.hooks, batch)
        return replace(write, companions=companions, rows=rows)

    def _next_version(
        self,
        resource_type: str,
        resource_id: str,
        body: dict[str, Any] | None,
        previous: tuple[int, Stored] | None,
        method: str,
    ) -> tuple[repository.NextVersion, list[Written]]:
        """The version after ``previous`` (a deletion when ``body`` is None), and the batch
        the hooks see."""
        number = 1 if previous is None else previous[1].version + 1
        moment = max(self.clock(), previous[1].last_updated if previous else 0)
        write = repository.NextVersion(
            resource_type,
            resource_id,
            previous,
            b"" if body is None else repository.with_meta(body, resource_id, number, moment),
            number,
            moment,
            method,
            {} if body is None else extract(resource_type, body, self.base_url),
            self._index_rows_of(previous),
            deleted=body is None,
        )
        return write, [Written(write.stored, body, _stored_of(previous))]

    def _index_rows_of(
        self, previous: tuple[int, Stored] | None
    ) -> dict[str, list[dict[str, Any]]] | None:
        """The index rows the version being replaced has: extracted again from its JSON,
        which costs less than the statements that replacing rows unchanged would."""
        if previous is None:
            return None
        stored = previous[1]
        if stored.deleted:
            return {}  # a deletion keeps no index rows
        return extract(stored.type, stored.body, self.base_url)

    def _first_version(self, creation: Creation) -> repository.NewResource:
        moment = self.clock()
        rtype, rid, body = creation.resource_type, creation.resource_id, creation.body
        return repository.NewResource(
            rtype,
            rid,
            repository.with_meta(body, rid, 1, moment),
            moment,
            extract(rtype, body, self.base_url),
            creation.method,
        )

    async def _delete_locked(
        self, connection: AsyncConnection, previous: tuple[int, Stored]
    ) -> Stored:
        stored = previous[1]
        return await self._save(connection, stored.type, stored.id, None, previous, "DELETE")

    async def single_match(
        self, connection: AsyncConnection, resource_type: str, query: str
    ) -> tuple[int, Stored] | None:
        """The one resource conditional criteria name, None for none; 412 for several."""
        return (await self.single_matches(connection, [(resource_type, query)]))[0]

    async def single_matches(
        self, connection: AsyncConnection, conditions: Sequence[tuple[str, str]]
    ) -> list[tuple[int, Stored] | None]:
        """``single_match`` of many (type, criteria) pairs, looked up together."""
        found = await self.matching_all(connection, conditions)
        for (resource_type, query), matches in zip(conditions, found, strict=True):
            if len(matches) > 1:
                raise PreconditionFailed(
                    f"'{resource_type}?{query}' matches {len(matches)} resources; expected one"
                )
        return [matches[0] if matches else None for matches in found]

    async def matching(
        self, connection: AsyncConnection, resource_type: str, query: str
    ) -> list[tuple[int, Stored]]:
        """At most two current resources matching conditional criteria (two proves 'many')."""
        return (await self.matching_all(connection, [(resource_type, query)]))[0]

    async def matching_all(
        self, connection: AsyncConnection, conditions: Sequence[tuple[str, str]]
    ) -> list[list[tuple[int, Stored]]]:
        """``matching`` of many (type, criteria) pairs: one lock statement, one query and one
        re-read for all of them, whatever their number.

        Each match is re-read under a row lock, as a plain update does: the caller writes
        its next version, and a concurrent update between match and write would otherwise
        make that version number collide (a 500) instead of waiting for it.
        """
        if not conditions:
            return []
        parsed = [self._conditional_criteria(rtype, query) for rtype, query in conditions]
        reach = _reach(parsed)
        if not self.database.is_sqlite:
            # Key the lock on the parsed criteria, not the raw text: a header and a
            # URL-encoded query (or reordered parameters) naming the same criteria must
            # serialise, or two conditional writes can each find nothing and both create.
            await repository.advisory_locks(connection, map(_criteria_lock, parsed))
        candidates = await self._candidates(connection, parsed, reach)
        planner = search_sql.Planner(self.base_url, reach)
        selects = [
            select(literal_column(str(n), Integer).label("n"), resource.c.pk)
            .where(planner.where(parsed[n]))
            .order_by(resource.c.pk)
            .limit(2)
            .subquery()
            for n in candidates
        ]
        rows: list[Any] = []
        if selects:
            query = (
                union_all(*(select(*s.c) for s in selects)).subquery()
                if selects[1:]
                else selects[0]
            )
            rows = list(await connection.execute(select(*query.c), planner.params))
        # Locked in one order everywhere (by key): no deadlocks.
        current = await repository.current_by_keys(connection, sorted({row.pk for row in rows}))
        found: list[list[tuple[int, Stored]]] = [[] for _ in parsed]
        for row in sorted(rows, key=lambda r: r.pk):
            stored = current.get(row.pk)
            if stored is not None and not stored.deleted:  # deleted while we waited
                found[row.n].append((row.pk, stored))
        return found

    async def _candidates(
        self, connection: AsyncConnection, parsed: list[search_criteria.Criteria], reach: Reach
    ) -> list[int]:
        """Which of the criteria may match anything, the rest ruled out cheaply.

        Criteria that are one plain token parameter each (``identifier=system|value``, as
        every If-None-Exist of an ingest) are grouped by type and parameter, and each group is
        first tried as one search ORing all their values: building one condition with many
        values costs a fraction of many conditions, and new data matches nothing. Only when
        that search finds something are the group's criteria looked up one by one.
        """
        groups: dict[tuple[str, str], list[int]] = {}
        candidates: list[int] = []
        for n, criteria in enumerate(parsed):
            (first, *rest) = criteria.criteria
            plain = first.param.type == "token" and not first.param.name.startswith("_")
            if rest or not plain or first.modifier or first.chain or first.has:
                candidates.append(n)
            else:
                groups.setdefault((criteria.resource_type, first.param.name), []).append(n)
        for members in groups.values():
            if len(members) > 1:
                combined = parsed[members[0]].criteria[0]
                values = tuple(v for n in members for v in parsed[n].criteria[0].values)
                probe = search_criteria.Criteria(
                    parsed[members[0]].resource_type, [replace(combined, values=values)]
                )
                planner = search_sql.Planner(self.base_url, reach)
                query = select(resource.c.pk).where(planner.where(probe)).limit(1)
                if await connection.scalar(query, planner.params) is None:
                    continue
            candidates.extend(members)
        return sorted(candidates)

    @staticmethod
    def _conditional_criteria(resource_type: str, query: str) -> search_criteria.Criteria:
        pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
        parsed = search_criteria.parse(resource_type, pairs)
        if parsed.unknown:
            raise BadRequest(
                "Conditional criteria name unknown parameters: " + ", ".join(parsed.unknown),
                code="not-supported",
            )
        if not parsed.criteria:
            # Nothing to evaluate is a malformed request (400), not a failed precondition.
            raise BadRequest("Conditional criteria must name at least one search parameter")
        return parsed

    async def _check_references(
        self,
        connection: AsyncConnection | None,
        writes: Sequence[tuple[str, str, list[model.ReferenceSite]]],
        within: Transaction | None,
    ) -> None:
        """Refuse (422) the first of the writes (type, id, reference sites) with a reference
        that cannot resolve; the targets of all of them are looked up in one query, in the
        write's transaction or (no ``connection``) on its own. With placeholders on, the
        missing targets of writes with no other fault get one, in the write's transaction."""
        looked_at = [self._reference_targets(*write) for write in writes]
        pending = within.pending if within is not None else set()  # the bundle's own creates
        wanted = {key for _, targets in looked_at for key in targets} - pending
        if connection is None:
            found = await repository.existing_now(self.database, wanted)
        else:
            found = await repository.existing(connection, wanted)
        found |= pending
        if self.placeholders and connection is not None:
            found |= await self._create_placeholders(connection, looked_at, wanted - found)
        for issues, targets in looked_at:
            issues += [
                _ref_issue(site, f"'{site.reference}' does not resolve")
                for key, site in targets.items()
                if key not in found
            ]
            if issues:
                raise Unprocessable(issues=issues)

    async def _create_placeholders(
        self,
        connection: AsyncConnection,
        looked_at: Sequence[tuple[list[Issue], object]],
        missing: set[tuple[str, str]],
    ) -> set[tuple[str, str]]:
        """Placeholders for the missing targets that never existed and whose type clients
        write, unless a write has another fault (it is refused anyway); which were created."""
        if not missing or any(issues for issues, _ in looked_at):
            return set()
        candidates = {key for key in missing if creatable(key[0])}
        fresh = sorted(
            candidates - await repository.existing(connection, candidates, with_deleted=True)
        )
        if fresh:
            await self._insert_first(
                connection, [Creation.put(rtype, rid, placeholder(rtype)) for rtype, rid in fresh]
            )
        return set(fresh)

    def _reference_targets(
        self, resource_type: str, resource_id: str, sites: list[model.ReferenceSite]
    ) -> tuple[list[Issue], dict[tuple[str, str], model.ReferenceSite]]:
        """The malformed or disallowed references of one write, and the local resources its
        other references name (the resource itself excepted) that must exist."""
        issues: list[Issue] = []
        wanted: dict[tuple[str, str], model.ReferenceSite] = {}
        for site in sites:
            if site.reference.startswith("#"):
                continue
            target_type, target_id, url = split_reference(site.reference, self.base_url)
            if url is not None and _ABSOLUTE.match(url):
                # another server's resource (or a urn): not ours to resolve, but a RESTful
                # URL names its type, which must be one the element allows
                named = _RESTFUL_TYPE.search(url)
                if named is not None and not _type_allowed(site, named.group(1)):
                    issues.append(_disallowed(site, named.group(1)))
                continue
            if target_type is None or target_id is None:
                issues.append(_ref_issue(site, f"'{site.reference}' is not a valid reference"))
            elif not _type_allowed(site, target_type):
                issues.append(_disallowed(site, target_type))
            elif target_type not in RESOURCE_TYPES:
                if target_type not in R4_RESOURCE_TYPES:
                    issues.append(
                        _ref_issue(
                            site,
                            f"'{site.reference}' cannot resolve: {target_type} is not an R4 "
                            "resource type",
                        )
                    )
                # else another system's record, of a type not hosted here: kept as sent
            elif (target_type, target_id) != (resource_type, resource_id):
                wanted[(target_type, target_id)] = site
        return issues, wanted


@contextmanager
def _created_concurrently(write: repository.NextVersion) -> Iterator[None]:
    """A unique-key violation while storing a write: a concurrent create of the same id won."""
    try:
        yield
    except IntegrityError as error:
        raise Conflict(f"{write.type}/{write.id} was created concurrently; retry") from error


def _reach(parsed: Sequence[search_criteria.Criteria]) -> Reach:
    """What the caller's conditional criteria may match: only what its searches would find
    (``service.auth.reach``), so a match never shows or changes another patient's record.
    Criteria of a type it may not search at all are refused (403) rather than taken as
    matching nothing, which would create what may already exist."""
    reach = Reach(current_access.get())
    for criteria in parsed:
        if reach(criteria.resource_type) is None:
            raise Forbidden(f"Conditional criteria need search rights on {criteria.resource_type}")
    return reach


def _disallowed(site: model.ReferenceSite, target_type: str) -> Issue:
    return _ref_issue(
        site,
        f"'{site.reference}' may not point at a {target_type}; allowed: "
        + ", ".join(site.allowed_types),
    )


def _type_allowed(site: model.ReferenceSite, target_type: str) -> bool:
    """Whether the element may point at a ``target_type`` (R4's targetProfile)."""
    allowed = site.allowed_types
    return not allowed or target_type in allowed or "Resource" in allowed


def _criteria_lock(parsed: search_criteria.Criteria) -> int:
    """The advisory lock key of conditional criteria: the same for the same criteria."""
    criteria = sorted((c.param.name, c.modifier or "", sorted(c.values)) for c in parsed.criteria)
    return repository.lock_key(orjson.dumps([parsed.resource_type, criteria]))


def _without_id(body: dict[str, Any]) -> dict[str, Any]:
    """A create's body: "If an id is provided, the server SHALL ignore it" (R4
    http.html#create), dropped before validating so a malformed one cannot refuse it either."""
    return {k: v for k, v in body.items() if k != "id"}


def _stored_of(previous: tuple[int, Stored] | None) -> Stored | None:
    return None if previous is None else previous[1]


def _ref_issue(site: model.ReferenceSite, message: str) -> Issue:
    return Issue(message, code="not-found", expression=(site.expression,))


def _same_content(stored: Stored, body: dict[str, Any], resource_id: str) -> bool:
    """Whether an update would change nothing but server metadata (no new version then)."""
    return _without_server_meta(stored.body) == _without_server_meta({**body, "id": resource_id})


def _without_server_meta(resource: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in _SERVER_META}
    return {**{k: v for k, v in resource.items() if k != "meta"}, "meta": meta}
