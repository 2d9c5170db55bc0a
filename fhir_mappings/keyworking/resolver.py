"""Who is accountable for a person, who their key workers are, and whom to contact — at an instant.

The contact is the key worker if available; else an active, available cover key worker; else
the accountable professional. "Available" means the member's PractitionerRole is active and has
no ``notAvailable.during`` covering the instant. A participant whose member is a Practitioner
is resolved through that practitioner's roles (preferring the one in the participant's
``onBehalfOf`` organisation). The ``reason`` says, in words a receptionist can read out, why
this person is the contact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from fhir_mappings.keyworking import moments
from fhir_mappings.keyworking.projection import Assignment, Role
from fhir_mappings.keyworking.terminology import (
    ACCOUNTABLE,
    CO_KEYWORKER,
    COVER,
    KEYWORKER,
    MANY_ACCOUNTABLE,
    NO_ACCOUNTABLE,
    NO_KEYWORKER,
    UNCOVERED_LEAVE,
)


class Holder(NamedTuple):
    """An assignment with the role it resolves to (for contact details and availability);
    a named tuple, as ``Assignment`` is: the gaps report makes one per participant."""

    assignment: Assignment
    role: Role | None
    absence: tuple[int | None, int | None, str] | None

    @property
    def display(self) -> str | None:
        return self.assignment.member_display or (self.role.display if self.role else None)

    @property
    def organization(self) -> str | None:
        return self.assignment.organization or (self.role.organization if self.role else None)


@dataclass(frozen=True)
class Answer:
    patient: str
    accountable: Holder | None
    keyworkers: tuple[Holder, ...]
    contact: Holder | None = None
    reason: str | None = None
    gaps: tuple[str, ...] = field(default_factory=tuple)


class Roles:
    """The projected roles, looked up by reference and by practitioner."""

    def __init__(self, roles: Iterable[Role] = ()) -> None:
        self.by_reference: dict[str, Role] = {}
        self.by_practitioner: dict[str, list[Role]] = {}
        self.add(roles)

    def add(self, roles: Iterable[Role]) -> None:
        """More roles, each once (a report adds the roles of each chunk of people it reads)."""
        for role in roles:
            if role.reference in self.by_reference:
                continue
            self.by_reference[role.reference] = role
            if role.practitioner:
                self.by_practitioner.setdefault(role.practitioner, []).append(role)

    def holder(self, assignment: Assignment, at: int) -> Holder:
        if assignment.member.startswith("Practitioner/"):
            candidates = self.by_practitioner.get(assignment.member, [])
            role = min(
                candidates,
                key=lambda r: (
                    r.organization != assignment.organization,
                    r.absence(at) is not None,
                    r.reference,
                ),
                default=None,
            )
        else:
            role = self.by_reference.get(assignment.member)
        return Holder(assignment, role, role.absence(at) if role else None)


def _until(absence: tuple[int | None, int | None, str]) -> str:
    _, end, description = absence
    if end is None:
        return f"{description}, with no return date"
    return f"{description} until {moments.day(end - 1)}"


def current(assignments: Iterable[Assignment], at: int) -> list[Assignment]:
    return [a for a in assignments if a.team_active and moments.covers(a.start, a.end, at)]


def resolve(patient: str, assignments: Sequence[Assignment], roles: Roles, at: int) -> Answer:
    now = sorted(current(assignments, at), key=lambda a: (a.care_team, a.participant))
    holders = {
        role: [roles.holder(a, at) for a in now if a.role == role]
        for role in (ACCOUNTABLE, KEYWORKER, CO_KEYWORKER, COVER)
    }
    accountables = holders[ACCOUNTABLE]
    keyworkers = holders[KEYWORKER] + holders[CO_KEYWORKER]
    gaps = []
    if not accountables:
        gaps.append(NO_ACCOUNTABLE)
    elif len(accountables) > 1:
        gaps.append(MANY_ACCOUNTABLE)
    if not keyworkers:
        gaps.append(NO_KEYWORKER)
    accountable = accountables[0] if accountables else None
    contact, reason = _contact(keyworkers, holders[COVER], accountable)
    if (
        keyworkers
        and all(k.absence for k in keyworkers)
        and not any(c.absence is None for c in holders[COVER])
    ):
        gaps.append(UNCOVERED_LEAVE)
    return Answer(patient, accountable, tuple(keyworkers), contact, reason, tuple(gaps))


def _contact(
    keyworkers: list[Holder], covers: list[Holder], accountable: Holder | None
) -> tuple[Holder | None, str | None]:
    available = next((k for k in keyworkers if k.absence is None), None)
    if available is not None:
        kind = "key worker" if available.assignment.role == KEYWORKER else "co-key worker"
        return available, kind
    away = "no key worker"
    if keyworkers:
        away = f"key worker {_who(keyworkers[0])} {absence_note(keyworkers[0])}"
    cover = next((c for c in covers if c.absence is None), None)
    if cover is not None:
        return cover, f"{away}; cover key worker"
    if accountable is not None and accountable.absence is None:
        no_cover = ", with no cover" if keyworkers else ""
        return accountable, f"{away}{no_cover}; accountable professional"
    return None, None


def _who(holder: Holder) -> str:
    return holder.display or holder.assignment.member


def absence_note(holder: Holder) -> str | None:
    """What a person must be told about their professional's absence, if any."""
    return _until(holder.absence) if holder.absence else None
