"""The keyworking projection tables: writing the rows ``fhir_mappings`` derives, reading them back.

Only this module knows the projection's SQL. Rows go in and come out as the domain's plain
dataclasses (``Assignment``, ``Role``, ``PatientRow``, ``PlanRow``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_mappings.keyworking.projection import Assignment, PatientRow, PlanRow, Role
from service.db.tables import kw_assignment, kw_patient, kw_patient_identifier, kw_plan, kw_role


def _assignment(row: Any) -> Assignment:
    return Assignment(
        patient=row.patient,
        role=row.role,
        member=row.member,
        care_team=row.care_team,
        index=row.idx,
        start=row.starts,
        end=row.ends,
        team_active=row.team_active,
        member_display=row.member_display,
        organization=row.organization,
        role_concepts=tuple(orjson.loads(row.role_concepts)),
    )


def _role(row: Any) -> Role:
    return Role(
        reference=row.reference,
        active=row.active,
        practitioner=row.practitioner,
        organization=row.organization,
        display=row.display,
        organization_display=row.organization_display,
        telecom=tuple(orjson.loads(row.telecom)),
        leave=tuple((s, e, d) for s, e, d in orjson.loads(row.leave)),
    )


# -- writes ------------------------------------------------------------------------------------


async def replace_assignments(
    connection: AsyncConnection, care_team: str, rows: Sequence[Assignment]
) -> None:
    await connection.execute(delete(kw_assignment).where(kw_assignment.c.care_team == care_team))
    if rows:
        await connection.execute(
            insert(kw_assignment),
            [
                {
                    "care_team": a.care_team,
                    "idx": a.index,
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
            ],
        )


async def replace_role(connection: AsyncConnection, reference: str, role: Role | None) -> None:
    await connection.execute(delete(kw_role).where(kw_role.c.reference == reference))
    if role is not None:
        await connection.execute(
            insert(kw_role).values(
                reference=role.reference,
                practitioner=role.practitioner,
                organization=role.organization,
                active=role.active,
                display=role.display,
                organization_display=role.organization_display,
                telecom=orjson.dumps(role.telecom),
                leave=orjson.dumps(role.leave),
            )
        )


async def replace_patient(
    connection: AsyncConnection, reference: str, patient: PatientRow | None
) -> None:
    await connection.execute(
        delete(kw_patient_identifier).where(kw_patient_identifier.c.patient == reference)
    )
    await connection.execute(delete(kw_patient).where(kw_patient.c.reference == reference))
    if patient is None:
        return
    await connection.execute(
        insert(kw_patient).values(
            reference=reference, display=patient.display, organization=patient.organization
        )
    )
    if patient.identifiers:
        await connection.execute(
            insert(kw_patient_identifier),
            [{"patient": reference, "identifier": key} for key in set(patient.identifiers)],
        )


async def replace_plan(connection: AsyncConnection, care_plan: str, plan: PlanRow | None) -> None:
    await connection.execute(delete(kw_plan).where(kw_plan.c.care_plan == care_plan))
    if plan is not None:
        await connection.execute(
            insert(kw_plan).values(
                care_plan=care_plan,
                patient=plan.patient,
                active=plan.active,
                review_due=plan.review_due,
                unperformed=",".join(map(str, plan.unperformed)),
            )
        )


# -- reads -------------------------------------------------------------------------------------


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
    for row in await connection.execute(query):
        found.setdefault(row.patient, []).append(row.identifier)
    return found


async def known_identifiers(connection: AsyncConnection, keys: Collection[str]) -> set[str]:
    """Which of ``keys`` (``system|value``) some Patient carries."""
    query = select(kw_patient_identifier.c.identifier).where(
        kw_patient_identifier.c.identifier.in_(list(keys))
    )
    return set((await connection.scalars(query)).all())


async def plans_for(connection: AsyncConnection, patients: Collection[str]) -> list[PlanRow]:
    query = select(kw_plan).where(kw_plan.c.patient.in_(list(patients)))
    return [
        PlanRow(
            r.care_plan,
            r.patient,
            r.active,
            r.review_due,
            tuple(int(i) for i in r.unperformed.split(",") if i),
        )
        for r in await connection.execute(query.order_by(kw_plan.c.care_plan))
    ]


async def patient_keys(connection: AsyncConnection) -> list[str]:
    """Every person the projection knows: Patients, and identifier-only CareTeam subjects."""
    known = set((await connection.scalars(select(kw_patient.c.reference))).all())
    known |= set((await connection.scalars(select(kw_assignment.c.patient).distinct())).all())
    known |= set((await connection.scalars(select(kw_plan.c.patient).distinct())).all())
    return sorted(known)


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
