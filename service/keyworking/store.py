"""The keyworking projection tables: writing the rows ``fhir_mappings`` derives, reading them back.

Only this module knows the projection's SQL. Rows go in and come out as the domain's plain
records (``Assignment``, ``Role``, ``PatientRow``, ``PlanRow``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    String,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_mappings.keyworking.projection import Assignment, PatientRow, PlanRow, Role
from service.db.engine import Database
from service.db.tables import kw_assignment, kw_patient, kw_patient_identifier, kw_plan, kw_role
from service.storage.combined_writes import TableRows
from service.storage.repository import insert_rows


def _assignment(row: Sequence[Any]) -> Assignment:
    """An ``Assignment`` from a row of ``kw_assignment``'s columns in table order.

    Positional, not by name: the gaps report converts every assignment of the population, and
    unpacking a row is several times cheaper than a dozen attribute lookups.
    """
    (
        _,
        care_team,
        idx,
        patient,
        role,
        member,
        member_display,
        organization,
        starts,
        ends,
        team_active,
        role_concepts,
    ) = row
    return Assignment(
        patient,
        role,
        member,
        care_team,
        idx,
        starts,
        ends,
        bool(team_active),
        member_display,
        organization,
        tuple(orjson.loads(role_concepts)),
    )


def _role(row: Sequence[Any]) -> Role:
    """A ``Role`` from a row of ``kw_role``'s columns in table order (positional, as above)."""
    reference, practitioner, organization, active, display, organization_display, *blobs = row
    telecom, leave = blobs
    return Role(
        reference,
        bool(active),
        practitioner,
        organization,
        display,
        organization_display,
        tuple(orjson.loads(telecom)),
        tuple((s, e, d) for s, e, d in orjson.loads(leave)),
    )


# -- writes ------------------------------------------------------------------------------------
# Each replaces the projection of many resources at once (a transaction Bundle's batch, or
# one write): one DELETE and one bulk INSERT per table, whatever the batch size. ``stored``
# names the resources that may have rows already (written before): only those are deleted,
# so a batch of creates deletes nothing. (A DELETE of new keys finds nothing, but it is not
# free: during a bulk load, before the planner has statistics, it was most of the load's
# database time.)


async def replace_assignments(
    connection: AsyncConnection, stored: Collection[str], rows: Sequence[Assignment]
) -> None:
    """The CareTeams' participants become ``rows`` (every row is of one of the teams)."""
    if stored:
        await connection.execute(
            delete(kw_assignment).where(kw_assignment.c.care_team.in_(list(stored)))
        )
    if rows:
        await insert_rows(connection, kw_assignment, _assignment_rows(rows))


def _assignment_rows(rows: Sequence[Assignment]) -> list[dict[str, Any]]:
    return [
        {
            "care_team": a.care_team,
            "idx": a.participant,
            "patient": a.patient,
            "role": a.role,
            "member": a.member,
            "member_display": a.member_display,
            "organization": a.organization,
            "starts": a.start,
            "ends": a.end,
            "team_active": a.team_active,
            "role_concepts": orjson.dumps(a.role_concepts),
        }
        for a in rows
    ]


async def replace_roles(
    connection: AsyncConnection, roles: Mapping[str, Role | None], stored: Collection[str]
) -> None:
    """Each PractitionerRole reference's row becomes its Role, or goes (None: deleted)."""
    if stored:
        await connection.execute(delete(kw_role).where(kw_role.c.reference.in_(list(stored))))
    kept = [role for role in roles.values() if role is not None]
    if kept:
        await insert_rows(connection, kw_role, _role_rows(kept))


def _role_rows(roles: Sequence[Role]) -> list[dict[str, Any]]:
    return [
        {
            "reference": role.reference,
            "practitioner": role.practitioner,
            "organization": role.organization,
            "active": role.active,
            "display": role.display,
            "organization_display": role.organization_display,
            "telecom": orjson.dumps(role.telecom),
            "leave": orjson.dumps(role.leave),
        }
        for role in roles
    ]


async def replace_patients(
    connection: AsyncConnection, patients: Mapping[str, PatientRow | None], stored: Collection[str]
) -> None:
    """Each Patient reference's rows become its PatientRow, or go (None: deleted)."""
    if stored:
        references = list(stored)
        await connection.execute(
            delete(kw_patient_identifier).where(kw_patient_identifier.c.patient.in_(references))
        )
        await connection.execute(delete(kw_patient).where(kw_patient.c.reference.in_(references)))
    kept = {reference: row for reference, row in patients.items() if row is not None}
    for batch in _patient_rows(kept):
        await insert_rows(connection, batch.table, batch.rows)


def _patient_rows(patients: Mapping[str, PatientRow]) -> list[TableRows]:
    """kw_patient's rows, then (they refer to them) kw_patient_identifier's."""
    return [
        TableRows(
            kw_patient,
            [
                {"reference": reference, "display": row.display, "organization": row.organization}
                for reference, row in patients.items()
            ],
        ),
        TableRows(
            kw_patient_identifier,
            [
                {"patient": reference, "identifier": key}
                for reference, row in patients.items()
                for key in dict.fromkeys(row.identifiers)
            ],
        ),
    ]


async def replace_plans(
    connection: AsyncConnection, plans: Mapping[str, PlanRow | None], stored: Collection[str]
) -> None:
    """Each CarePlan id's row becomes its PlanRow, or goes (None: deleted or no patient)."""
    if stored:
        await connection.execute(delete(kw_plan).where(kw_plan.c.care_plan.in_(list(stored))))
    kept = {care_plan: plan for care_plan, plan in plans.items() if plan is not None}
    if kept:
        await insert_rows(connection, kw_plan, _plan_rows(kept))


def _plan_rows(plans: Mapping[str, PlanRow]) -> list[dict[str, Any]]:
    return [
        {
            "care_plan": care_plan,
            "patient": plan.patient,
            "active": plan.active,
            "review_due": plan.review_due,
            "unperformed": ",".join(map(str, plan.unperformed)),
        }
        for care_plan, plan in plans.items()
    ]


def new_rows(
    patients: Mapping[str, PatientRow],
    roles: Sequence[Role],
    plans: Mapping[str, PlanRow],
    assignments: Sequence[Assignment],
) -> list[TableRows]:
    """The projection of resources stored for the first time, as rows to insert with them
    (``TableRows``, in an order that inserts a Patient's row before its identifiers')."""
    return [
        *_patient_rows(patients),
        TableRows(kw_role, _role_rows(roles)),
        TableRows(kw_plan, _plan_rows(plans)),
        TableRows(kw_assignment, _assignment_rows(assignments)),
    ]


# -- reads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """All ``$accountable`` needs about one person, read in one statement (``person``)."""

    key: str  # the projection key: the Patient carrying the identifier asked about, else as asked
    known: bool  # a Patient, or the subject of some CareTeam
    display: str | None
    assignments: list[Assignment]
    roles: list[Role]


def _person_sql(binary_order: str, key: str, one_of: Callable[[str, str], str]) -> str:
    """Person, aliases, assignments and the roles they name as one ``UNION ALL``.

    One round trip instead of five. Each row is a kind (0 assignment, 1 role, 2 Patient), then
    ``kw_assignment``'s columns, then ``kw_role``'s (a Patient fills ``reference`` and
    ``display``), so the row converters read their slice. The roles members name and the roles
    of members that are Practitioners are read by one scan of ``kw_role`` whose two conditions
    each use an index; ``one_of`` writes them: on PostgreSQL as comparisons with an array,
    which it answers by combining the two indexes (where ``IN (subquery) OR IN (subquery)``
    would read the whole table), and which cost a tenth less of its CPU than the two
    branches this replaced (pgbench, /tmp). Only members naming a Practitioner are looked up
    by ``practitioner`` (it holds nothing else), not every member.
    Several Patients may carry one NHS number; the first in code-point order
    (``binary_order``) is the person, as Python sorts. ``key`` is the parameter's placeholder.
    """
    return f"""
        WITH person(key) AS (
            SELECT coalesce(
                (SELECT patient FROM kw_patient_identifier WHERE identifier = {key}
                 ORDER BY patient {binary_order} LIMIT 1),
                {key})
        ),
        alias(key) AS (
            SELECT key FROM person
            UNION ALL
            SELECT identifier FROM kw_patient_identifier WHERE patient = (SELECT key FROM person)
        ),
        assigned AS (
            SELECT * FROM kw_assignment WHERE patient IN (SELECT key FROM alias)
        )
        SELECT 0, pk, care_team, idx, patient, role, member, member_display, organization,
               starts, ends, team_active, role_concepts,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
        FROM assigned
        UNION ALL
        SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               reference, practitioner, organization, active, display, organization_display,
               telecom, leave
        FROM kw_role
        WHERE {one_of("reference", "SELECT member FROM assigned")}
           OR {one_of("practitioner", _PRACTITIONER_MEMBERS)}
        UNION ALL
        SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               reference, NULL, NULL, NULL, display, NULL, NULL, NULL
        FROM kw_patient WHERE reference = (SELECT key FROM person)
        ORDER BY 1, 2
        """


_PRACTITIONER_MEMBERS = "SELECT member FROM assigned WHERE substr(member, 1, 13) = 'Practitioner/'"
_PERSON_SQLITE = text(_person_sql("", ":key", lambda column, rows: f"{column} IN ({rows})"))
_PERSON_POSTGRESQL = _person_sql(
    'COLLATE "C"', "$1", lambda column, rows: f"{column} = ANY(ARRAY({rows}))"
)


async def person(database: Database, key: str) -> Person:
    """The person ``key`` (``Patient/id`` or ``system|value``) names, with every alias's rows.

    One statement, so it needs no transaction. On PostgreSQL it goes straight to asyncpg
    (``Database.driver_rows``), as a read by id does: through SQLAlchemy's ``execute`` it
    cost as much CPU as all the rest of ``$accountable``.
    """
    rows: Sequence[Sequence[Any]]
    if database.is_sqlite:
        async with database.read() as connection:
            rows = (await connection.execute(_PERSON_SQLITE, {"key": key})).all()
    else:
        rows = await database.driver_rows(_PERSON_POSTGRESQL, key)
    assignments = [_assignment(row[1:13]) for row in rows if row[0] == 0]
    roles = [_role(row[13:21]) for row in rows if row[0] == 1]
    patient = next((row for row in rows if row[0] == 2), None)
    return Person(
        key if patient is None else patient[13],
        patient is not None or bool(assignments),
        None if patient is None else patient[17],
        assignments,
        roles,
    )


async def assignments(
    connection: AsyncConnection,
    *,
    patients: Collection[str] | None = None,
    members: Collection[str] | None = None,
    role: str | None = None,
) -> list[Assignment]:
    query = select(kw_assignment)
    if patients is not None:
        query = query.where(kw_assignment.c.patient.in_(list(patients)))
    if members is not None:
        query = query.where(kw_assignment.c.member.in_(list(members)))
    if role is not None:
        query = query.where(kw_assignment.c.role == role)
    rows = await connection.execute(query.order_by(kw_assignment.c.pk))
    return [_assignment(r) for r in rows]


async def roles_for(connection: AsyncConnection, members: Iterable[str]) -> list[Role]:
    """The roles members name directly, and every role of members that are Practitioners."""
    wanted = list(set(members))
    if not wanted:
        return []
    query = select(kw_role).where(
        or_(kw_role.c.reference.in_(wanted), kw_role.c.practitioner.in_(wanted))
    )
    return [_role(r) for r in await connection.execute(query)]


async def roles_of_organization(connection: AsyncConnection, organization: str) -> list[Role]:
    query = select(kw_role).where(kw_role.c.organization == organization)
    return [_role(r) for r in await connection.execute(query.order_by(kw_role.c.reference))]


async def patient(connection: AsyncConnection, reference: str) -> PatientRow | None:
    row = (
        await connection.execute(select(kw_patient).where(kw_patient.c.reference == reference))
    ).first()
    return None if row is None else PatientRow(row.reference, (), row.display, row.organization)


async def patients_with_identifier(connection: AsyncConnection, key: str) -> list[str]:
    query = select(kw_patient_identifier.c.patient).where(kw_patient_identifier.c.identifier == key)
    return sorted(set((await connection.scalars(query)).all()))


async def identifiers_of(connection: AsyncConnection, reference: str) -> list[str]:
    query = select(kw_patient_identifier.c.identifier).where(
        kw_patient_identifier.c.patient == reference
    )
    return sorted((await connection.scalars(query)).all())


async def identifiers_for(
    connection: AsyncConnection, patients: Collection[str]
) -> dict[str, list[str]]:
    """The identifier keys of each Patient (for people also named by NHS number)."""
    query = select(kw_patient_identifier.c.patient, kw_patient_identifier.c.identifier).where(
        kw_patient_identifier.c.patient.in_(list(patients))
    )
    found: dict[str, list[str]] = {}
    for patient, identifier in await connection.execute(query):
        found.setdefault(patient, []).append(identifier)
    return found


_ALIASED = text(
    """
    SELECT identifier, patient FROM kw_patient_identifier
    WHERE identifier IN (SELECT patient FROM kw_assignment WHERE patient LIKE '%|%'
                         UNION SELECT patient FROM kw_plan WHERE patient LIKE '%|%')
    """
)


async def aliased_subjects(connection: AsyncConnection) -> dict[str, list[str]]:
    """Each Patient's identifiers that CareTeams or CarePlans name people by.

    An identifier several Patients carry belongs to the first in code-point order, as in
    ``person``. Read once per gaps page: few people are named by identifier, so this spares
    a look-up of identifiers for every chunk of people.
    """
    owner: dict[str, str] = {}
    for identifier, patient in await connection.execute(_ALIASED):
        owner[identifier] = min(patient, owner.get(identifier, patient))
    found: dict[str, list[str]] = {}
    for identifier, patient in owner.items():
        found.setdefault(patient, []).append(identifier)
    return found


# Assignments (``kw_assignment``'s columns from ``pk`` to ``team_active``) and plans (their
# ``active`` in that last column, then ``review_due`` and ``unperformed``) as one result.
_GROUP_SQL = """
    SELECT 1, NULL, pk, care_team, idx, patient, role, member, member_display, organization,
           starts, ends, team_active, NULL, NULL
    FROM kw_assignment WHERE patient {keys}
    UNION ALL
    SELECT 2, care_plan, NULL, NULL, NULL, patient, NULL, NULL, NULL, NULL, NULL, NULL,
           active, review_due, unperformed
    FROM kw_plan WHERE patient {keys}
    ORDER BY 1, 3, 2
"""
# PostgreSQL takes the chunk's keys as one array: IN renders a placeholder per key, and
# rendering 500 of them for every chunk was a tenth of the report's CPU. SQLite has no arrays.
_GROUP = {
    "postgresql": text(_GROUP_SQL.format(keys="= ANY(:keys)")).bindparams(
        bindparam("keys", type_=ARRAY(String))
    ),
    "sqlite": text(_GROUP_SQL.format(keys="IN :keys")).bindparams(
        bindparam("keys", expanding=True)
    ),
}


async def group(
    connection: AsyncConnection, keys: Collection[str]
) -> tuple[list[Assignment], list[PlanRow]]:
    """The assignments and plans under ``keys``, in one round trip (the gaps report's chunk).

    Assignments come without role codings (the report never shows them) in the order they
    were written (as ``assignments`` gives them), plans by id.
    """
    assignments: list[Assignment] = []
    plans: list[PlanRow] = []
    statement = _GROUP[connection.dialect.name]
    for kind, care_plan, *columns, review_due, unperformed in await connection.execute(
        statement, {"keys": list(keys)}
    ):
        if kind == 1:
            assignments.append(_assignment((*columns, b"[]")))
        else:
            patient, active = columns[3], columns[10]  # in the patient and team_active columns
            performers = tuple(int(i) for i in unperformed.split(",") if i)
            plans.append(PlanRow(care_plan, patient, bool(active), review_due, performers))
    return assignments, plans


_SUBJECTS = union_all(select(kw_assignment.c.patient), select(kw_plan.c.patient)).subquery()
_PEOPLE = union_all(
    select(kw_patient.c.reference),
    select(_SUBJECTS.c.patient)
    .where(
        ~select(kw_patient.c.reference)
        .where(kw_patient.c.reference == _SUBJECTS.c.patient)
        .exists(),
        ~select(kw_patient_identifier.c.identifier)
        .where(kw_patient_identifier.c.identifier == _SUBJECTS.c.patient)
        .exists(),
    )
    .distinct(),
)


async def people(connection: AsyncConnection) -> list[str]:
    """Everyone to report on, once, in code-point order: Patients, and the identifier-only
    subjects of CareTeams and CarePlans — but an identifier some Patient carries is that Patient.

    Patients plus the few subjects that are neither a Patient nor a Patient's identifier: two
    anti-joins, instead of sorting every assignment's patient to remove duplicates.
    """
    return sorted([key for (key,) in await connection.execute(_PEOPLE)])


_CASELOADS = (
    select(kw_assignment.c.member, func.count(kw_assignment.c.patient.distinct()))
    .where(
        kw_assignment.c.role == bindparam("role"),
        kw_assignment.c.team_active,
        or_(kw_assignment.c.starts.is_(None), kw_assignment.c.starts <= bindparam("at")),
        or_(kw_assignment.c.ends.is_(None), kw_assignment.c.ends > bindparam("at")),
    )
    .group_by(kw_assignment.c.member)
)


async def caseloads(connection: AsyncConnection, role: str, at: int) -> dict[str, int]:
    """People per member for whom the member holds ``role`` at ``at``, counted by the database.

    Current means the team active and the period covering ``at``. The gaps report needs every
    key worker's caseload on each page: counting in SQL spares reading and converting every
    assignment of the population.
    """
    rows = await connection.execute(_CASELOADS, {"role": role, "at": at})
    return {member: count for member, count in rows}


async def patients_served_by(connection: AsyncConnection, organization: str) -> set[str]:
    """People whose Patient, CareTeam participant or participant's role is the organisation's."""
    members = select(kw_role.c.reference).where(kw_role.c.organization == organization)
    practitioners = select(kw_role.c.practitioner).where(kw_role.c.organization == organization)
    query = select(kw_assignment.c.patient).where(
        or_(
            kw_assignment.c.organization == organization,
            kw_assignment.c.member.in_(members),
            kw_assignment.c.member.in_(practitioners),
        )
    )
    served = set((await connection.scalars(query.distinct())).all())
    own = select(kw_patient.c.reference).where(kw_patient.c.organization == organization)
    return served | set((await connection.scalars(own)).all())
