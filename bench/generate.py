"""A deterministic synthetic keyworking population, emitted as FHIR transaction Bundles.

Why synthetic and seeded: a benchmark is only comparable between runs (and between machines) if
every run loads exactly the same data. Why streamed: at 1,000,000 patients the population does
not fit comfortably in memory as JSON, and the loader only ever needs the next bundle.

Shape (issue 7): N patients, 500 organisations, 20,000 practitioner roles (scaled down for small
N), each patient one CareTeam with 2-5 participants (accountable GP, key worker, co-key worker or
cover, case team) and one CarePlan with 3-6 activities; about 5% of key workers on leave today
(half of their patients covered, half not) and about 3% of patients with no accountable
professional (a gap). Reference data is PUT by id (stable ids the wrk scripts can use); each
patient's Patient + CareTeam + CarePlan is POSTed with ``urn:uuid`` references between them.

Run ``python -m bench.generate --patients 1000 --out pop.ndjson`` to inspect one bundle a line.
"""

from __future__ import annotations

import argparse
import datetime
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
STAFF = "https://keyworker-fhir.org/fhir/Id/staff-number"
ROLE = "https://keyworker-fhir.org/fhir/CodeSystem/keyworking-role"
BUNDLE_ENTRIES = 100
PATIENTS_PER_BUNDLE = BUNDLE_ENTRIES // 3  # Patient + CareTeam + CarePlan stay together
TEAM_NAME = "Keyworking arrangement"

Resource = dict[str, Any]

_FAMILY = ["Okafor", "Smith", "Jones", "Patel", "Nowak", "Hughes", "Rahman", "Clarke", "Mensah"]
_GIVEN = ["Ada", "Ben", "Chloe", "Dev", "Ewa", "Femi", "Grace", "Hari", "Isla", "Jon", "Kemi"]
_ACTIVITIES = [
    "Review the personal plan",
    "Book the annual health check",
    "Follow up the housing application",
    "Advocate at the benefits appeal",
    "Complete the carer's assessment paperwork",
    "Arrange the medication review",
    "Check in after discharge",
]


def nhs_check_digit(nine: str) -> int | None:
    """Modulus 11 over weights 10..2; ``None`` when the check digit would be 10 (invalid)."""
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def is_valid_nhs_number(value: str) -> bool:
    """True for ten digits whose last is the modulus 11 check digit of the first nine."""
    if len(value) != 10 or not value.isdigit():
        return False
    return nhs_check_digit(value[:9]) == int(value[9])


def nhs_numbers(rng: random.Random) -> Iterator[str]:
    """Unique valid NHS numbers in the 9xx test range, from a seed-chosen starting point."""
    prefix = 900_000_000 + rng.randrange(50_000_000)
    while True:
        nine = str(prefix)
        check = nhs_check_digit(nine)
        if check is not None:
            yield f"{nine}{check}"
        prefix += 1


@dataclass(frozen=True)
class Config:
    """Everything the population depends on: the same Config always yields the same bytes."""

    patients: int = 100_000
    seed: int = 7
    as_of: datetime.date = field(default_factory=datetime.date.today)

    @property
    def organizations(self) -> int:
        return max(5, min(500, self.patients // 200))

    @property
    def roles(self) -> int:
        return max(20, min(20_000, self.patients // 5))


@dataclass
class Stats:
    """What was generated, so the report can say what the population actually holds."""

    organizations: int = 0
    practitioners: int = 0
    roles: int = 0
    keyworker_roles: int = 0
    keyworkers_on_leave: int = 0
    patients: int = 0
    participants: int = 0
    activities: int = 0
    patients_with_gap: int = 0
    patients_keyworker_on_leave_covered: int = 0
    patients_keyworker_on_leave_uncovered: int = 0

    @property
    def resources(self) -> int:
        return self.organizations + self.practitioners + self.roles + 3 * self.patients


@dataclass(frozen=True)
class Batch:
    """One transaction Bundle; ``phase`` orders reference data, ``nhs`` lists its patients."""

    phase: str
    bundle: Resource
    nhs: tuple[str, ...] = ()


def _bundle(entries: list[Resource]) -> Resource:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _put(resource: Resource) -> Resource:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"resource": resource, "request": {"method": "PUT", "url": url}}


def _role_concept(code: str) -> Resource:
    return {"coding": [{"system": ROLE, "code": code}]}


def _chunks(items: list[Resource], size: int) -> Iterator[list[Resource]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Population:
    """The generator; iterate ``batches()`` once. ``stats`` is complete after the iteration."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stats = Stats()
        self._rng = random.Random(config.seed)
        self._nhs = nhs_numbers(random.Random(config.seed * 7919 + 1))
        orgs = config.organizations
        self._gp_orgs = list(range(max(1, orgs * 2 // 5)))
        self._care_orgs = list(range(len(self._gp_orgs), orgs))
        # Every fourth role is a GP at a practice; the rest are key workers in care organisations.
        self._gp_roles: list[int] = []
        self._kw_roles: list[int] = []
        self._role_org: dict[int, int] = {}
        self._leave: dict[int, tuple[datetime.date, datetime.date]] = {}
        for i in range(config.roles):
            if i % 4 == 0:
                self._gp_roles.append(i)
                self._role_org[i] = self._gp_orgs[(i // 4) % len(self._gp_orgs)]
            else:
                self._kw_roles.append(i)
                self._role_org[i] = self._care_orgs[i % len(self._care_orgs)]
                if self._rng.random() < 0.05:
                    start = config.as_of - datetime.timedelta(days=self._rng.randint(1, 14))
                    end = config.as_of + datetime.timedelta(days=self._rng.randint(7, 45))
                    self._leave[i] = (start, end)
        self._available_kw = [r for r in self._kw_roles if r not in self._leave]

    @property
    def keyworker_role_ids(self) -> list[str]:
        """Ids of the non-GP roles: members for the teams the CRUD mix creates."""
        return [f"bench-role-{i}" for i in self._kw_roles]

    def batches(self) -> Iterator[Batch]:
        """Organisations, then practitioners, then roles, then patients: each a phase."""
        orgs = [self._organization(i) for i in range(self.config.organizations)]
        for chunk in _chunks(orgs, BUNDLE_ENTRIES):
            yield Batch("Organization", _bundle([_put(r) for r in chunk]))
        for phase, make in (("Practitioner", self._practitioner), ("PractitionerRole", self._role)):
            for start in range(0, self.config.roles, BUNDLE_ENTRIES):
                stop = min(start + BUNDLE_ENTRIES, self.config.roles)
                yield Batch(phase, _bundle([_put(make(i)) for i in range(start, stop)]))
        for start in range(0, self.config.patients, PATIENTS_PER_BUNDLE):
            entries: list[Resource] = []
            nhs: list[str] = []
            for _ in range(start, min(start + PATIENTS_PER_BUNDLE, self.config.patients)):
                number, patient_entries = self._patient_entries()
                nhs.append(number)
                entries.extend(patient_entries)
            yield Batch("Patient", _bundle(entries), tuple(nhs))

    # Reference data -------------------------------------------------------------------------

    def _organization(self, i: int) -> Resource:
        self.stats.organizations += 1
        gp = i < len(self._gp_orgs)
        kind = "GP practice" if gp else ("Adult social care", "Community trust")[i % 2]
        return {
            "resourceType": "Organization",
            "id": f"bench-org-{i}",
            "identifier": [{"system": ODS, "value": f"B{i:05d}"}],
            "active": True,
            "name": f"{kind} {i}",
        }

    def _practitioner(self, i: int) -> Resource:
        self.stats.practitioners += 1
        rng = random.Random(self.config.seed * 1_000_003 + i)
        return {
            "resourceType": "Practitioner",
            "id": f"bench-prac-{i}",
            "identifier": [{"system": STAFF, "value": f"S{i:06d}"}],
            "name": [{"family": rng.choice(_FAMILY), "given": [rng.choice(_GIVEN)]}],
        }

    def _role(self, i: int) -> Resource:
        self.stats.roles += 1
        gp = i % 4 == 0
        if not gp:
            self.stats.keyworker_roles += 1
        role: Resource = {
            "resourceType": "PractitionerRole",
            "id": f"bench-role-{i}",
            "active": True,
            "practitioner": {"reference": f"Practitioner/bench-prac-{i}"},
            "organization": {"reference": f"Organization/bench-org-{self._role_org[i]}"},
            "code": [{"text": "General practitioner" if gp else "Social worker"}],
            "telecom": [{"system": "phone", "value": f"0113 {i:07d}", "use": "work"}],
        }
        if i in self._leave:
            self.stats.keyworkers_on_leave += 1
            start, end = self._leave[i]
            role["notAvailable"] = [
                {
                    "description": "Annual leave",
                    "during": {"start": start.isoformat(), "end": end.isoformat()},
                }
            ]
        return role

    # Patients -------------------------------------------------------------------------------

    def _urn(self) -> str:
        return f"urn:uuid:{uuid.UUID(int=self._rng.getrandbits(128), version=4)}"

    def _participant(self, code: str, role: int, start: datetime.date, end: Any = None) -> Resource:
        period: dict[str, str] = {"start": start.isoformat()}
        if end is not None:
            period["end"] = end.isoformat()
        return {
            "role": [_role_concept(code)],
            # Each member's role names its organisation (R4 allows onBehalfOf only for a
            # Practitioner member: ctm-1).
            "member": {"reference": f"PractitionerRole/bench-role-{role}"},
            "period": period,
        }

    def _patient_entries(self) -> tuple[str, list[Resource]]:
        rng, as_of = self._rng, self.config.as_of
        self.stats.patients += 1
        number = next(self._nhs)
        patient_url, team_url, plan_url = self._urn(), self._urn(), self._urn()
        team_start = as_of - datetime.timedelta(days=rng.randint(30, 3000))
        joined = team_start + datetime.timedelta(days=rng.randint(0, 20))
        participants: list[Resource] = []
        gp = rng.choice(self._gp_roles)
        gap = rng.random() < 0.03
        if gap:
            self.stats.patients_with_gap += 1
            if rng.random() < 0.5:  # the accountable GP left and nobody took over
                # after joining (a period must end after it starts: the service refuses
                # anything else), at most 25 days ago
                latest = min(25, (as_of - joined).days - 1)
                left = as_of - datetime.timedelta(days=rng.randint(1, latest))
                participants.append(self._participant("accountable-professional", gp, joined, left))
        else:
            participants.append(self._participant("accountable-professional", gp, joined))
        keyworker = rng.choice(self._kw_roles)
        participants.append(self._participant("keyworker", keyworker, joined))
        if keyworker in self._leave:
            leave_start, leave_end = self._leave[keyworker]
            if rng.random() < 0.5:
                self.stats.patients_keyworker_on_leave_covered += 1
                cover = rng.choice(self._available_kw)
                participants.append(
                    self._participant("cover-keyworker", cover, leave_start, leave_end)
                )
            else:
                self.stats.patients_keyworker_on_leave_uncovered += 1
        elif rng.random() < 0.4:
            participants.append(
                self._participant("co-keyworker", rng.choice(self._available_kw), joined)
            )
        for _ in range(rng.randint(0, 5 - len(participants))):
            participants.append(
                self._participant("case-team-member", rng.choice(self._kw_roles), joined)
            )
        while len(participants) < 2:
            participants.append(
                self._participant("case-team-member", rng.choice(self._kw_roles), joined)
            )
        self.stats.participants += len(participants)
        birth = datetime.date(1930, 1, 1) + datetime.timedelta(days=rng.randint(0, 30_000))
        patient: Resource = {
            "resourceType": "Patient",
            "identifier": [{"system": NHS, "value": number}],
            "name": [{"family": rng.choice(_FAMILY), "given": [rng.choice(_GIVEN)]}],
            "gender": rng.choice(["female", "male", "other", "unknown"]),
            "birthDate": birth.isoformat(),
            "generalPractitioner": [{"reference": f"Organization/bench-org-{self._role_org[gp]}"}],
        }
        team: Resource = {
            "resourceType": "CareTeam",
            "status": "active",
            "name": TEAM_NAME,
            "subject": {"reference": patient_url},
            "period": {"start": team_start.isoformat()},
            "participant": participants,
            "managingOrganization": [
                {"reference": f"Organization/bench-org-{self._role_org[keyworker]}"}
            ],
        }
        performers = [p["member"] for p in participants]
        activities = []
        for _ in range(rng.randint(3, 6)):
            when = as_of + datetime.timedelta(days=rng.randint(-60, 120))
            activities.append(
                {
                    "detail": {
                        "status": rng.choice(["scheduled", "in-progress", "completed"]),
                        "description": rng.choice(_ACTIVITIES),
                        "scheduledPeriod": {"start": when.isoformat()},
                        "performer": [rng.choice(performers)],
                    }
                }
            )
        self.stats.activities += len(activities)
        plan: Resource = {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "title": "Personal plan",
            "subject": {"reference": patient_url},
            "careTeam": [{"reference": team_url}],
            "author": {"reference": f"PractitionerRole/bench-role-{keyworker}"},
            "period": {"start": joined.isoformat()},
            "activity": activities,
        }
        identifier = f"identifier={NHS}|{number}"
        return number, [
            {
                "fullUrl": patient_url,
                "resource": patient,
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": identifier},
            },
            {
                "fullUrl": team_url,
                "resource": team,
                "request": {"method": "POST", "url": "CareTeam"},
            },
            {
                "fullUrl": plan_url,
                "resource": plan,
                "request": {"method": "POST", "url": "CarePlan"},
            },
        ]


def main(argv: list[str] | None = None) -> int:
    """Write the population as NDJSON (one transaction Bundle a line) and print its stats."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", type=datetime.date.fromisoformat, default=datetime.date.today())
    parser.add_argument("--out", default="-", help="file to write (default stdout)")
    args = parser.parse_args(argv)
    population = Population(Config(args.patients, args.seed, args.as_of))
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
    try:
        for batch in population.batches():
            out.write(orjson.dumps(batch.bundle) + b"\n")
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    print(orjson.dumps(population.stats.__dict__).decode(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
