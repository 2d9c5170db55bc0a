"""The keyworking operations, free of HTTP: $accountable, $handover, $caseload and the gaps.

Each reads the projection (``store``), hands plain rows to the pure domain functions in
``fhir_mappings.keyworking`` and returns FHIR JSON. ``$handover`` writes through
``Interactions.update`` so validation, the index, the rules and Provenance all run as for any
other update.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_mappings.keyworking import answer, caseload, gaps, handover, resolver
from fhir_mappings.keyworking.projection import Assignment, PlanRow
from fhir_mappings.keyworking.terminology import KEYWORKER
from service.errors import BadRequest, Conflict, NotFound, Unprocessable
from service.interactions import Interactions, Outcome
from service.keyworking import store
from service.search.dates import date_range
from service.write_hooks import write_context

_CHUNK = 500  # people read per round of queries in the gaps report
_GAP_NAMESPACE = uuid.UUID("9a4c1c52-6a0c-4b59-9d44-6f1f8f2f0d5e")


def _owners(people: Sequence[str], aliases: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Each key whose rows belong to one of ``people``: the person, and its identifiers."""
    owner = {person: person for person in people}
    owner |= {key: person for person in people for key in aliases.get(person, ())}
    return owner


async def _prefetch(
    connection: AsyncConnection, owners: Sequence[Mapping[str, str]]
) -> AsyncGenerator[tuple[list[Assignment], list[PlanRow]]]:
    """The rows of each chunk in turn, the next one already being read when one is taken."""
    if not owners:
        return
    pending = asyncio.ensure_future(store.group(connection, owners[0]))
    try:
        for following in [*owners[1:], None]:
            done = await pending
            if following is not None:
                pending = asyncio.ensure_future(store.group(connection, following))
            yield done
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending


@dataclass
class GapPage:
    """A page of the gaps report, found while it is sent (``Keyworking.gap_page``).

    Iterate ``batches`` to the end; then ``after`` is (patient, gaps of it already shown) to
    continue from, or None when this was the last page.
    """

    batches: AsyncIterator[list[dict[str, Any]]] = field(init=False)
    after: tuple[str, int] | None = None


def instant_param(value: str | None, default: int, name: str = "date") -> int:
    """The first moment a date parameter names, read as a search reads dates
    (``service.search.dates``): a time needs its zone, and any year 0001 to 9999 will do."""
    if value is None:
        return default
    try:
        return date_range(value)[0]
    except ValueError as error:
        raise BadRequest(
            f"'{name}' is not a FHIR date or dateTime: {error}", code="value", expression=(name,)
        ) from error


class Keyworking:
    def __init__(self, interactions: Interactions, *, caseload_limit: int) -> None:
        self.interactions = interactions
        self.database = interactions.database
        self.caseload_limit = caseload_limit

    def now(self) -> int:
        return self.interactions.clock()

    async def accountable(
        self, patient: str, at: int, *, confined_to: str | None = None
    ) -> dict[str, Any]:
        """Who is accountable for ``patient`` (``Patient/id``, ``id`` or ``system|value``).

        ``confined_to`` (``Patient/id``) is a caller confined to one patient: anyone else is
        answered as someone nobody knows, so the answer never tells whether they exist.
        The hottest keyworking question, so it is one statement (``store.person``), with no
        BEGIN and ROLLBACK round trips around it.
        """
        key = patient if "|" in patient or patient.startswith("Patient/") else f"Patient/{patient}"
        person = await store.person(self.database, key)
        if not person.known or confined_to not in (None, person.key):
            if "|" in key:
                raise NotFound(f"No patient is known by the identifier '{key}'")
            raise NotFound(f"{key} is not known")
        result = resolver.resolve(person.key, person.assignments, resolver.Roles(person.roles), at)
        return answer.parameters(result, person.display)

    async def handover(self, care_team: str, body: Any) -> Outcome:
        try:
            request = handover.parse(body)
        except handover.BadHandover as error:
            raise BadRequest(str(error)) from error
        current = await self.interactions.read("CareTeam", care_team)
        try:
            updated = handover.apply(orjson.loads(current.content), request)
        except handover.HandoverRefused as error:
            raise Conflict(str(error), code="business-rule") from error
        target_type, _, target_id = request.target.partition("/")
        try:
            await self.interactions.read(target_type, target_id)
        except NotFound as error:
            raise Unprocessable(
                f"'to' ({request.target}) is not known", code="not-found", expression=("to",)
            ) from error
        reason = request.reason or f"Handover of {request.role} to {request.target}"
        token = write_context.set(dataclasses.replace(write_context.get(), reason=reason))
        try:
            return await self.interactions.update(
                "CareTeam", care_team, updated, if_match=current.version
            )
        finally:
            write_context.reset(token)

    async def caseload(self, organization_id: str, at: int) -> dict[str, Any]:
        organization = f"Organization/{organization_id}"
        await self.interactions.read("Organization", organization_id)
        async with self.database.read() as connection:
            own = await store.roles_of_organization(connection, organization)
            members = {r.reference for r in own} | {r.practitioner for r in own if r.practitioner}
            rows = await store.assignments(connection, members=members)
            roles = resolver.Roles(await store.roles_for(connection, members))
        loads = caseload.caseloads(own, rows, roles, at)
        return caseload.parameters(organization, loads, at)

    def gap_page(
        self,
        *,
        organization: str | None,
        within_days: int,
        count: int,
        after: tuple[str, int] | None,
    ) -> GapPage:
        """One page of DetectedIssues, people in key order, continuing after ``after``.

        Nothing is read until the page's ``batches`` are iterated: the caller streams each
        batch out as it comes, so the page is never held whole in memory.
        """
        page = GapPage()
        page.batches = self._gap_batches(page, organization, within_days, count, after)
        return page

    async def _gap_batches(
        self,
        page: GapPage,
        organization: str | None,
        within_days: int,
        count: int,
        after: tuple[str, int] | None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The page's issues, a chunk of people at a time; sets ``page.after`` when full.

        Each chunk is a few set-based queries, not a few per person, and the roles already
        read for earlier chunks are not read again. Reading stops as soon as the page is full.
        """
        at = self.now()
        limits = gaps.Limits(at, within_days, self.caseload_limit)
        shown = 0
        async with self.database.read() as connection, self.database.read() as ahead:
            people = await self._people(connection, organization)
            start = 0 if after is None else bisect.bisect_left(people, after[0])
            load = await store.caseloads(connection, KEYWORKER, at)
            roles, asked = resolver.Roles(), set[str]()
            aliases = await store.aliased_subjects(connection)
            chunks = [people[i : i + _CHUNK] for i in range(start, len(people), _CHUNK)]
            owners = [_owners(chunk, aliases) for chunk in chunks]
            # The next chunk's rows are read on a second connection while this chunk is
            # worked out: PostgreSQL's work and Python's then overlap on two cores.
            fetch = _prefetch(ahead, owners)
            try:
                for chunk, owner in zip(chunks, owners, strict=True):
                    rows, plans = await anext(fetch)
                    found = await self._chunk_gaps(
                        connection, chunk, owner, rows, plans, load, limits, roles, asked
                    )
                    batch: list[dict[str, Any]] = []
                    for person in chunk:
                        first = after[1] if after is not None and person == after[0] else 0
                        for position in range(first, len(found[person])):
                            if shown == count:
                                page.after = (person, position)
                                yield batch
                                return
                            ident = str(uuid.uuid5(_GAP_NAMESPACE, f"{person}|{position}"))
                            batch.append(gaps.detected_issue(found[person][position], ident, at))
                            shown += 1
                    yield batch
            finally:
                await fetch.aclose()

    async def _chunk_gaps(
        self,
        connection: AsyncConnection,
        people: Sequence[str],
        owner: Mapping[str, str],
        rows: Sequence[Assignment],
        plans: Sequence[PlanRow],
        load: Mapping[str, int],
        limits: gaps.Limits,
        roles: resolver.Roles,
        asked: set[str],
    ) -> dict[str, list[gaps.Gap]]:
        """Every gap of each person, from the rows and plans under the keys ``owner`` maps
        to them (a Patient's own, and those under identifiers it carries).

        ``roles`` holds the roles of the members in ``asked``, read for earlier chunks; only
        the roles of members new to ``asked`` are read (and ``asked`` grows by them).
        """
        new = {r.member for r in rows} - asked
        asked |= new
        roles.add(await store.roles_for(connection, new))
        rows_of: dict[str, list[Assignment]] = {person: [] for person in people}
        plans_of: dict[str, list[PlanRow]] = {person: [] for person in people}
        for row in rows:
            rows_of[owner[row.patient]].append(row)
        for plan in plans:
            plans_of[owner[plan.patient]].append(plan)
        return {
            person: gaps.detect(
                resolver.resolve(person, rows_of[person], roles, limits.at),
                rows_of[person],
                plans_of[person],
                load,
                limits,
            )
            for person in people
        }

    async def _people(self, connection: AsyncConnection, organization: str | None) -> list[str]:
        """Everyone to report on, once: an identifier naming a Patient is that Patient."""
        people = await store.people(connection)
        if organization is None:
            return people
        served = await store.patients_served_by(connection, organization)
        return [k for k in people if k in served]
