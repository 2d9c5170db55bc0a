"""The keyworking write hook: keep the projection current and enforce the rules on every write.

Runs inside the write's transaction (``service.write_hooks``). A broken rule raises
``Unprocessable`` with every issue found, so the write is refused whole and nothing of it —
resource version, index rows or projection rows — is kept.

The one-accountable-professional rule needs the patient's other CareTeams, which another
process may be changing at the same moment. On PostgreSQL a transaction-scoped advisory lock
per patient serialises those checks across processes (READ COMMITTED then sees the other
writer's committed rows); SQLite write transactions are already serialised by
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_mappings.keyworking import nhs_number, projection, rules
from fhir_mappings.keyworking.terminology import ACCOUNTABLE
from service.errors import Unprocessable
from service.keyworking import store
from service.write_hooks import Written


class KeyworkingHook:
    """A ``WriteHook`` for CareTeam, PractitionerRole, Patient and CarePlan writes."""

    def __init__(self, *, is_sqlite: bool) -> None:
        self.is_sqlite = is_sqlite

    async def __call__(self, connection: AsyncConnection, written: Written) -> None:
        stored, body = written.stored, written.body
        if body is not None:
            issues = (
                rules.care_team_issues(body)
                if stored.type == "CareTeam"
                else nhs_number.reference_identifiers(body, stored.type)
            )
            if stored.type == "Patient":
                issues += nhs_number.patient_issues(body)
            if issues:
                raise Unprocessable(issues=issues)
        if stored.type == "CareTeam":
            await self._care_team(connection, stored.id, body)
        elif stored.type == "PractitionerRole":
            role = None if body is None else projection.practitioner_role(stored.id, body)
            await store.replace_role(connection, stored.reference, role)
        elif stored.type == "Patient":
            row = None if body is None else projection.patient(stored.id, body)
            await store.replace_patient(connection, stored.reference, row)
        elif stored.type == "CarePlan":
            plan = None if body is None else projection.care_plan(stored.id, body)
            await store.replace_plan(connection, stored.id, plan)

    async def _care_team(
        self, connection: AsyncConnection, care_team: str, body: dict[str, Any] | None
    ) -> None:
        rows = [] if body is None else projection.care_team(care_team, body)
        accountable = [r for r in rows if r.role == ACCOUNTABLE and r.team_active]
        if accountable:
            aliases = await patient_aliases(connection, accountable[0].patient)
            await self._lock(connection, aliases[0])
            others = [
                a
                for a in await store.assignments(connection, patients=aliases, role=ACCOUNTABLE)
                if a.care_team != care_team
            ]
            issues = rules.accountable_issues(rows, others)
            if issues:
                raise Unprocessable(issues=issues)
        await store.replace_assignments(connection, care_team, rows)

    async def _lock(self, connection: AsyncConnection, patient: str) -> None:
        if self.is_sqlite:
            return
        digest = hashlib.sha256(b"keyworking-patient:" + patient.encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def patient_aliases(connection: AsyncConnection, key: str) -> list[str]:
    """Every key the same person is projected under, the canonical one (the Patient) first.

    A CareTeam may name a person as ``Patient/123`` or only by NHS number; both are the same
    person when the Patient carries that identifier.
    """
    if "|" in key:
        patients = await store.patients_with_identifier(connection, key)
        if not patients:
            return [key]
        key = patients[0]
    return [key, *await store.identifiers_of(connection, key)]
