"""The keyworking operations, free of HTTP: $accountable, $handover, $caseload and the gaps.

Each reads the projection (``store``), hands plain rows to the pure domain functions in
``fhir_mappings.keyworking`` and returns FHIR JSON. ``$handover`` writes through
``Interactions.update`` so validation, the index, the rules and Provenance all run as for any
other update.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_mappings.keyworking import answer, caseload, gaps, handover, moments, resolver
from fhir_mappings.keyworking.projection import Assignment, PlanRow
from fhir_mappings.keyworking.terminology import KEYWORKER
from service.errors import BadRequest, Conflict, NotFound, Unprocessable
from service.interactions import Interactions, Outcome
from service.keyworking import store
from service.keyworking.hook import patient_aliases
from service.write_hooks import write_context

_CHUNK = 200  # people read per round of queries in the gaps report
_GAP_NAMESPACE = uuid.UUID("9a4c1c52-6a0c-4b59-9d44-6f1f8f2f0d5e")


@dataclass(frozen=True)
class GapPage:
    issues: list[dict[str, Any]]
    after: tuple[str, int] | None  # (patient, gaps of it already shown) to continue from


def instant_param(value: str | None, default: int, name: str = "date") -> int:
    if value is None:
        return default
    try:
        return moments.bounds(value)[0]
    except ValueError as error:
        raise BadRequest(f"'{name}' is not a FHIR date or dateTime", code="value") from error


class Keyworking:
    def __init__(self, interactions: Interactions, *, caseload_limit: int) -> None:
        self.interactions = interactions
        self.database = interactions.database
        self.caseload_limit = caseload_limit

    def now(self) -> int:
        return self.interactions.clock()

    async def accountable(self, patient: str, at: int) -> dict[str, Any]:
        async with self.database.read() as connection:
            key = await self._patient(connection, patient)
            aliases = await patient_aliases(connection, key)
            rows = await store.assignments(connection, patients=aliases)
            roles = resolver.Roles(await store.roles_for(connection, {r.member for r in rows}))
            known = await store.patient(connection, aliases[0])
        result = resolver.resolve(aliases[0], rows, roles, at)
        return answer.parameters(result, known.display if known else None)

    async def _patient(self, connection: AsyncConnection, value: str) -> str:
        """The projection key for ``Patient/id``, ``id`` or ``system|value``; 404 if unknown."""
        if "|" in value:
            found = await store.patients_with_identifier(connection, value)
            if found:
                return found[0]
            if await store.assignments(connection, patients=[value]):
                return value
            raise NotFound(f"No patient is known by the identifier '{value}'")
        key = value if value.startswith("Patient/") else f"Patient/{value}"
        if await store.patient(connection, key) or await store.assignments(
            connection, patients=[key]
        ):
            return key
        raise NotFound(f"{key} is not known")

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

    async def gap_page(
        self,
        *,
        organization: str | None,
        within_days: int,
        count: int,
        after: tuple[str, int] | None,
    ) -> GapPage:
        """One page of DetectedIssues, people in key order, continuing after ``after``.

        People are read a chunk at a time (a few queries per chunk, not per person), and
        reading stops as soon as the page is full.
        """
        at = self.now()
        limits = gaps.Limits(at, within_days, self.caseload_limit)
        issues: list[dict[str, Any]] = []
        async with self.database.read() as connection:
            people = await self._people(connection, organization)
            if after is not None:
                people = [p for p in people if p >= after[0]]
            load = caseload.keyworker_counts(
                await store.assignments(connection, role=KEYWORKER), at
            )
            for offset in range(0, len(people), _CHUNK):
                chunk = people[offset : offset + _CHUNK]
                found = await self._chunk_gaps(connection, chunk, load, limits)
                for person in chunk:
                    first = after[1] if after is not None and person == after[0] else 0
                    for position in range(first, len(found[person])):
                        if len(issues) == count:
                            return GapPage(issues, (person, position))
                        ident = str(uuid.uuid5(_GAP_NAMESPACE, f"{person}|{position}"))
                        issues.append(gaps.detected_issue(found[person][position], ident, at))
        return GapPage(issues, None)

    async def _chunk_gaps(
        self,
        connection: AsyncConnection,
        people: Sequence[str],
        load: Mapping[str, int],
        limits: gaps.Limits,
    ) -> dict[str, list[gaps.Gap]]:
        """Every gap of each person; a Patient's rows include those under its identifiers."""
        owner = {person: person for person in people}
        for person, keys in (await store.identifiers_for(connection, people)).items():
            owner |= {key: person for key in keys}
        rows = await store.assignments(connection, patients=owner)
        roles = resolver.Roles(await store.roles_for(connection, {r.member for r in rows}))
        plans = await store.plans_for(connection, owner)
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
        keys = await store.patient_keys(connection)
        aliased = await store.known_identifiers(connection, [k for k in keys if "|" in k])
        people = [k for k in keys if k not in aliased]
        if organization is None:
            return people
        served = await store.patients_served_by(connection, organization)
        return [k for k in people if k in served]
