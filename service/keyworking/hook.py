"""The keyworking write hook: keep the projection current and enforce the rules on every write.

The rules one resource meets on its own are checked before anything is written. The
projection of a resource's first version is rows inserted by the write's own statement;
replacing the projection of a stored resource, and the rule that needs the patient's other
CareTeams, run inside the write's transaction (``service.write_hooks``). A broken rule
raises ``Unprocessable`` with every issue found, so the write is refused whole and nothing of
it (resource version, index rows or projection rows) is kept.

The one-accountable-professional rule needs the patient's other CareTeams, which another
process may be changing at the same moment. On PostgreSQL a transaction-scoped advisory lock
per patient serialises those checks across processes (READ COMMITTED then sees the other
writer's committed rows); SQLite write transactions are already serialised by
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_mappings.keyworking import nhs_number, projection, rules
from fhir_mappings.keyworking.projection import Assignment
from fhir_mappings.keyworking.terminology import ACCOUNTABLE
from service.errors import Unprocessable
from service.keyworking import store
from service.storage.combined_writes import TableRows
from service.storage.repository import advisory_locks, lock_key
from service.write_hooks import WriteHook, Written


class KeyworkingHook(WriteHook):
    """The write hook for CareTeam, PractitionerRole, Patient and CarePlan writes.

    A batch is projected table by table: Patients first, because a CareTeam's rule check
    looks up the identifiers its patient is also known by, then roles and plans, then
    CareTeams, checked against each other as well as against what is stored.
    """

    def __init__(self, *, is_sqlite: bool) -> None:
        self.is_sqlite = is_sqlite

    def check(self, batch: Sequence[Written]) -> None:
        for written in batch:
            _check(written)

    def companion_rows(self, batch: Sequence[Written]) -> list[TableRows]:
        """The projection of first versions no rule needs the database for, inserted by the
        write's own statement."""
        new = [w for w in batch if _only_rows(w)]
        if not new:
            return []
        of_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for written in new:
            assert written.body is not None  # a first version has a body
            of_type.setdefault(written.stored.type, []).append((written.stored.id, written.body))
        plans = ((i, projection.care_plan(i, body)) for i, body in of_type.get("CarePlan", ()))
        return store.new_rows(
            {f"Patient/{i}": projection.patient(i, body) for i, body in of_type.get("Patient", ())},
            [
                projection.practitioner_role(i, body)
                for i, body in of_type.get("PractitionerRole", ())
            ],
            {i: plan for i, plan in plans if plan is not None},
            [a for w in new if w.stored.type == "CareTeam" for a in _team_rows(w)],
        )

    def needs_database(self, batch: Sequence[Written]) -> bool:
        return not all(_projects_alike(w) or _only_rows(w) for w in batch)

    async def write_batch(self, connection: AsyncConnection, batch: Sequence[Written]) -> None:
        of_type: dict[str, dict[str, dict[str, Any] | None]] = {}
        stored: dict[str, set[str]] = {}  # type -> ids that were written before this batch
        for written in batch:
            if _projects_alike(written) or _only_rows(written):
                continue
            resource_type, resource_id = written.stored.type, written.stored.id
            of_type.setdefault(resource_type, {})[resource_id] = written.body
            if written.previous is not None:
                stored.setdefault(resource_type, set()).add(resource_id)
        if patients := of_type.get("Patient"):
            await store.replace_patients(
                connection,
                {
                    f"Patient/{i}": None if body is None else projection.patient(i, body)
                    for i, body in patients.items()
                },
                {f"Patient/{i}" for i in stored.get("Patient", ())},
            )
        if roles := of_type.get("PractitionerRole"):
            await store.replace_roles(
                connection,
                {
                    f"PractitionerRole/{i}": None
                    if body is None
                    else projection.practitioner_role(i, body)
                    for i, body in roles.items()
                },
                {f"PractitionerRole/{i}" for i in stored.get("PractitionerRole", ())},
            )
        if plans := of_type.get("CarePlan"):
            await store.replace_plans(
                connection,
                {
                    i: None if body is None else projection.care_plan(i, body)
                    for i, body in plans.items()
                },
                stored.get("CarePlan", set()),
            )
        if teams := of_type.get("CareTeam"):
            await self._care_teams(connection, teams, stored.get("CareTeam", set()))

    async def _care_teams(
        self,
        connection: AsyncConnection,
        teams: dict[str, dict[str, Any] | None],
        written_before: set[str],
    ) -> None:
        """Project the CareTeams, refusing them when a patient would have two accountable
        professionals at once (against other teams stored, and the other teams of the batch)."""
        rows: dict[str, list[Assignment]] = {
            team: [] if body is None else projection.care_team(team, body)
            for team, body in teams.items()
        }
        accountable = {  # team -> its patient, for the teams with an accountable professional
            team: team_rows[0].patient
            for team, team_rows in rows.items()
            if _names_accountable(team_rows)
        }
        if accountable:
            aliases = await _aliases(connection, set(accountable.values()))
            await self._lock(connection, {aliases[patient][0] for patient in accountable.values()})
            everyone = {key for patient in accountable.values() for key in aliases[patient]}
            stored = await store.assignments(connection, patients=everyone, role=ACCOUNTABLE)
            current = [a for a in stored if a.care_team not in rows]
            current += [
                a for team_rows in rows.values() for a in team_rows if a.role == ACCOUNTABLE
            ]
            for team, patient in accountable.items():
                people = set(aliases[patient])
                others = [a for a in current if a.care_team != team and a.patient in people]
                issues = rules.accountable_issues(rows[team], others)
                if issues:
                    raise Unprocessable(issues=issues)
        await store.replace_assignments(
            connection, written_before, [a for team_rows in rows.values() for a in team_rows]
        )

    async def _lock(self, connection: AsyncConnection, patients: set[str]) -> None:
        if not self.is_sqlite:
            keys = (lock_key(b"keyworking-patient:" + patient.encode()) for patient in patients)
            await advisory_locks(connection, keys)


_PROJECTIONS: dict[str, Callable[[str, dict[str, Any]], object]] = {
    "Patient": projection.patient,
    "PractitionerRole": projection.practitioner_role,
    "CarePlan": projection.care_plan,
    "CareTeam": projection.care_team,
}


def _projects_alike(written: Written) -> bool:
    """Whether an update leaves the projection as the version it replaces left it.

    Then there is nothing to write, and no rule to check again: the stored projection is
    this one already, and every write since it was stored was checked against it. Updates
    that change only what keyworking ignores (a team's name, a note) are common, and
    re-projecting a CareTeam costs a lock and half a dozen statements.
    """
    previous, body = written.previous, written.body
    project = _PROJECTIONS.get(written.stored.type)
    if project is None or previous is None or previous.deleted or body is None:
        return False
    resource_id = written.stored.id
    return bool(project(resource_id, body) == project(resource_id, previous.body))


def _only_rows(written: Written) -> bool:
    """Whether a write's projection is rows to insert and nothing more: the first version of
    a projected resource, unless it is a CareTeam with an accountable professional (whose
    rule reads the patient's other teams, under a lock)."""
    resource_type, body = written.stored.type, written.body
    if written.previous is not None or body is None or resource_type not in _PROJECTIONS:
        return False
    if resource_type != "CareTeam":
        return True
    return not _names_accountable(_team_rows(written))


def _team_rows(written: Written) -> list[Assignment]:
    """A written CareTeam's projection, worked out once for all the hook's steps."""
    rows: list[Assignment] | None = written.derived.get("care_team")
    if rows is None:
        assert written.body is not None
        rows = written.derived["care_team"] = projection.care_team(written.stored.id, written.body)
    return rows


def _names_accountable(team: Sequence[Assignment]) -> bool:
    """Whether an active team names an accountable professional (the rule's business)."""
    return any(a.role == ACCOUNTABLE and a.team_active for a in team)


def _check(written: Written) -> None:
    """The rules one write must meet on its own: CareTeam periods, NHS numbers."""
    stored, body = written.stored, written.body
    if body is None:
        return
    issues = (
        rules.care_team_issues(body)
        if stored.type == "CareTeam"
        else nhs_number.reference_identifiers(body, stored.type)
    )
    if stored.type == "Patient":
        issues += nhs_number.patient_issues(body)
    if issues:
        raise Unprocessable(issues=issues)


async def _aliases(connection: AsyncConnection, keys: set[str]) -> dict[str, list[str]]:
    """``patient_aliases`` of many keys: local Patients' identifiers in one query."""
    local = sorted(key for key in keys if "|" not in key)
    identifiers = await store.identifiers_for(connection, local) if local else {}
    found = {key: [key, *sorted(identifiers.get(key, ()))] for key in local}
    for key in keys - set(local):
        found[key] = await patient_aliases(connection, key)
    return found


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
