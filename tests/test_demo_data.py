"""The demonstration caseload is valid FHIR R4, keeps the keyworking rules, and shows every form
of keyworking in DESIGN.md section 1, on whatever day it is loaded."""

from __future__ import annotations

import ast
import datetime
import importlib
import itertools
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import cache, cached_property
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from fhir_mappings import demo
from fhir_mappings.demo import demo_resources

Resource = dict[str, Any]
Day = datetime.date

KEYWORKING_ROLE = "https://keyworker-fhir.org/fhir/CodeSystem/keyworking-role"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
SNOMED_GP = "62247001"
REVIEW = "Annual personal plan review"
DEPENDENCY_ORDER = (
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Patient",
    "RelatedPerson",
    "CareTeam",
    "CarePlan",
)
KEYWORKING = ("keyworker", "co-keyworker", "cover-keyworker")

# Days the demo may be loaded on: today, a leap day, and the last day of a year.
DAYS = [datetime.date.today(), datetime.date(2028, 2, 29), datetime.date(2030, 12, 31)]


def nhs_number_is_valid(number: str) -> bool:
    """The NHS number modulus-11 check: weights 10..2, check digit 11 - sum % 11, 11 -> 0."""
    if not re.fullmatch(r"\d{10}", number):
        return False
    check = 11 - sum(int(number[i]) * (10 - i) for i in range(9)) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(number[9])


def days_covered(start: Day, end: Day | None, day: Day) -> bool:
    return start <= day and (end is None or day <= end)


class Seat(NamedTuple):
    """One CareTeam participant, flattened."""

    patient: str
    care_team: Resource
    role: str
    member: str
    start: Day
    end: Day | None

    def covers(self, day: Day) -> bool:
        return days_covered(self.start, self.end, day)


class Caseload:
    """The demo resources for one day, with the lookups the tests need."""

    def __init__(self, today: Day) -> None:
        self.today = today
        self.resources = demo_resources(today)
        self.by_ref = {f"{r['resourceType']}/{r['id']}": r for r in self.resources}

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources if r["resourceType"] == resource_type]

    @cached_property
    def seats(self) -> list[Seat]:
        seats = []
        for team in self.of_type("CareTeam"):
            for participant in team.get("participant", []):
                roles = [
                    coding["code"]
                    for concept in participant["role"]
                    for coding in concept["coding"]
                    if coding["system"] == KEYWORKING_ROLE
                ]
                assert len(roles) == 1, f"{team['id']}: one keyworking role per participant"
                period = participant["period"]
                seats.append(
                    Seat(
                        team["subject"]["reference"],
                        team,
                        roles[0],
                        participant["member"]["reference"],
                        Day.fromisoformat(period["start"]),
                        Day.fromisoformat(period["end"]) if "end" in period else None,
                    )
                )
        return seats

    def now(self, *roles: str, patient: str | None = None) -> list[Seat]:
        return [
            seat
            for seat in self.seats
            if seat.role in roles
            and seat.covers(self.today)
            and (patient is None or seat.patient == patient)
        ]

    def leave_now(self, member: str) -> list[tuple[Day, Day]]:
        """The member's leave that covers today, from ``PractitionerRole.notAvailable``."""
        spells = []
        for absence in self.by_ref[member].get("notAvailable", []):
            start = Day.fromisoformat(absence["during"]["start"])
            end = Day.fromisoformat(absence["during"]["end"])
            if days_covered(start, end, self.today):
                spells.append((start, end))
        return spells

    def person(self, member: str) -> str:
        """The name of the person behind a CareTeam member."""
        resource = self.by_ref[member]
        if resource["resourceType"] == "PractitionerRole":
            return str(resource["practitioner"]["display"]).removeprefix("Dr ")
        name = resource["name"][0]
        return f"{name['given'][0]} {name['family']}"


@cache
def caseload(today: Day) -> Caseload:
    return Caseload(today)


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from leaves(item, (*path, index))
    else:
        yield path, node


# --- Valid FHIR R4, in an order that can be loaded -----------------------------------------


@pytest.mark.parametrize("today", DAYS, ids=str)
def test_every_resource_validates_against_its_r4b_model(today: Day) -> None:
    for resource in caseload(today).resources:
        module = importlib.import_module(f"fhir.resources.R4B.{resource['resourceType'].lower()}")
        model = getattr(module, resource["resourceType"])
        model.model_validate(resource)


def test_every_resource_passes_the_services_write_validation() -> None:
    """The models do not check coded values (gender, status, kind); the write path does."""
    from fhir_mappings.model import validate

    for resource in caseload(DAYS[0]).resources:
        issues, sites = validate(resource["resourceType"], resource)
        assert not issues, (resource["id"], [issue.diagnostics for issue in issues])
        for site in sites:
            target = site.reference.split("/")[0]
            assert not site.allowed_types or target in site.allowed_types, site


def test_resources_come_in_dependency_order() -> None:
    types = [r["resourceType"] for r in caseload(DAYS[0]).resources]
    assert set(types) == set(DEPENDENCY_ORDER)
    positions = [DEPENDENCY_ORDER.index(t) for t in types]
    assert positions == sorted(positions)


def test_ids_are_readable_and_unique_per_type() -> None:
    ids = defaultdict(list)
    for resource in caseload(DAYS[0]).resources:
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)+", resource["id"]), resource["id"]
        ids[resource["resourceType"]].append(resource["id"])
    for resource_type, found in ids.items():
        assert len(found) == len(set(found)), f"duplicate {resource_type} id"


def test_every_reference_resolves_to_an_earlier_resource() -> None:
    seen: set[str] = set()
    for resource in caseload(DAYS[0]).resources:
        for reference in references(resource):
            assert re.fullmatch(r"[A-Za-z]+/[a-z0-9-]+", reference), reference
            assert reference in seen, f"{resource['id']} refers to {reference} before it exists"
        seen.add(f"{resource['resourceType']}/{resource['id']}")


def test_counts_match_the_documented_caseload() -> None:
    counts = {t: len(caseload(DAYS[0]).of_type(t)) for t in DEPENDENCY_ORDER}
    assert 3 <= counts["Organization"] <= 4
    assert 8 <= counts["Practitioner"] <= 12
    assert counts["PractitionerRole"] > counts["Practitioner"]  # somebody has two roles
    assert 10 <= counts["Patient"] <= 12
    assert counts["CareTeam"] == counts["Patient"]


def test_each_call_returns_fresh_unshared_objects() -> None:
    first = demo_resources(DAYS[0])
    # One dict or list in two places would make a change to one resource change another.
    containers = [id(node) for node in _containers(first)]
    assert len(containers) == len(set(containers))
    first[0]["name"] = "changed"
    assert demo_resources(DAYS[0])[0]["name"] != "changed"


def _containers(node: Any) -> Iterator[Any]:
    if isinstance(node, dict | list):
        yield node
        for child in node.values() if isinstance(node, dict) else node:
            yield from _containers(child)


def test_demo_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(demo.__file__).read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert imported <= sys.stdlib_module_names | {"__future__"}, imported


# --- Dates follow the day the demo is loaded --------------------------------------------------


def test_every_date_moves_with_today() -> None:
    today = DAYS[0]
    before = dict(leaves(demo_resources(today)))
    after = dict(leaves(demo_resources(today + datetime.timedelta(days=1))))
    assert before.keys() == after.keys()
    dates = 0
    for path, value in before.items():
        if path[-1] in {"start", "end", "birthDate"}:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value), (path, value)
            shifted = Day.fromisoformat(value) + datetime.timedelta(days=1)
            assert after[path] == shifted.isoformat(), path
            dates += 1
        else:
            assert after[path] == value, path
    assert dates > 100


# --- The rules that hold on every write ---------------------------------------------------------


def test_nhs_number_check_rejects_bad_numbers() -> None:
    assert nhs_number_is_valid("9990001073")
    assert not nhs_number_is_valid("9990001074")  # wrong check digit
    # 999000109 gives a check digit of 10: no number starting so is ever issued.
    assert not any(nhs_number_is_valid(f"999000109{digit}") for digit in "0123456789")
    assert not nhs_number_is_valid("999000107")


def test_every_patient_has_one_valid_synthetic_nhs_number() -> None:
    for patient in caseload(DAYS[0]).of_type("Patient"):
        numbers = [i["value"] for i in patient["identifier"] if i["system"] == NHS_NUMBER]
        assert len(numbers) == 1, patient["id"]
        assert numbers[0].startswith("999"), numbers[0]
        assert nhs_number_is_valid(numbers[0]), numbers[0]


@pytest.mark.parametrize("today", DAYS, ids=str)
def test_no_patient_ever_has_two_accountable_professionals_at_once(today: Day) -> None:
    by_patient = defaultdict(list)
    for seat in caseload(today).seats:
        if seat.role == "accountable-professional" and seat.care_team["status"] == "active":
            by_patient[seat.patient].append(seat)
    for patient, seats in by_patient.items():
        for a, b in itertools.combinations(seats, 2):
            overlap = days_covered(a.start, a.end, b.start) or days_covered(b.start, b.end, a.start)
            assert not overlap, f"{patient}: {a.member} and {b.member} overlap"


@pytest.mark.parametrize("today", DAYS, ids=str)
def test_every_patient_has_exactly_one_accountable_professional_today(today: Day) -> None:
    load = caseload(today)
    for patient in load.of_type("Patient"):
        reference = f"Patient/{patient['id']}"
        assert len(load.now("accountable-professional", patient=reference)) == 1, reference


def test_participant_periods_lie_within_their_care_team_and_end_after_they_start() -> None:
    for seat in caseload(DAYS[0]).seats:
        team = seat.care_team["period"]
        assert Day.fromisoformat(team["start"]) <= seat.start, seat
        if seat.end is not None:
            assert seat.end > seat.start, seat
        if "end" in team:
            assert seat.end is not None
            assert seat.end <= Day.fromisoformat(team["end"]), seat


def test_participants_serve_within_their_practitioner_role_period() -> None:
    load = caseload(DAYS[0])
    for seat in load.seats:
        role = load.by_ref[seat.member]
        if role["resourceType"] != "PractitionerRole":
            continue
        assert Day.fromisoformat(role["period"]["start"]) <= seat.start, seat
        if "end" in role["period"]:
            assert seat.end is not None
            assert seat.end <= Day.fromisoformat(role["period"]["end"]), seat
        assert role["active"] or not seat.covers(load.today), seat


# --- Every form of keyworking, each with its own patient ---------------------------------------


def one_key_worker_for_one_person(load: Caseload) -> set[str]:
    patients_of = defaultdict(set)
    for seat in load.now(*KEYWORKING):
        patients_of[seat.member].add(seat.patient)
    return {
        seat.patient
        for seat in load.now("keyworker")
        if patients_of[seat.member] == {seat.patient}
        and len(load.now(*KEYWORKING, patient=seat.patient)) == 1
    }


def one_key_worker_for_several_people(load: Caseload) -> set[str]:
    patients_of = defaultdict(set)
    for seat in load.now("keyworker"):
        patients_of[seat.member].add(seat.patient)
    return {p for patients in patients_of.values() if len(patients) >= 3 for p in patients}


def two_key_workers_share_one_person(load: Caseload) -> set[str]:
    return {
        key.patient
        for key in load.now("keyworker")
        for co in load.now("co-keyworker", patient=key.patient)
        if co.member != key.member
    }


def case_team_around_one_person(load: Caseload) -> set[str]:
    members = defaultdict(set)
    for seat in load.now("case-team-member"):
        members[seat.patient].add(seat.member)
    return {
        patient
        for patient, found in members.items()
        if len(found) >= 3 and any(m.startswith("RelatedPerson/") for m in found)
    }


def no_key_worker(load: Caseload) -> set[str]:
    return {
        seat.patient
        for seat in load.now("accountable-professional")
        if not load.now(*KEYWORKING, patient=seat.patient)
    }


def key_workers_rotate_yearly(load: Caseload) -> set[str]:
    found = set()
    for a, b in itertools.permutations([s for s in load.seats if s.role == "keyworker"], 2):
        if a.patient != b.patient or a.member == b.member or a.end is None:
            continue
        if b.start == a.end + datetime.timedelta(days=1) and 360 <= (b.start - a.start).days <= 366:
            found.add(a.patient)
    return found


def same_key_worker_for_years(load: Caseload) -> set[str]:
    six_years_ago = load.today - datetime.timedelta(days=6 * 365)
    return {
        seat.patient
        for seat in load.now("keyworker")
        if seat.end is None and seat.start <= six_years_ago
    }


def key_worker_on_leave_with_cover(load: Caseload) -> set[str]:
    found = set()
    for key in load.now("keyworker"):
        for start, end in load.leave_now(key.member):
            for cover in load.now("cover-keyworker", patient=key.patient):
                whole_leave = cover.start <= start and cover.end is not None and cover.end >= end
                if whole_leave and cover.member != key.member and not load.leave_now(cover.member):
                    found.add(key.patient)
    return found


def key_worker_on_leave_without_cover(load: Caseload) -> set[str]:
    return {
        key.patient
        for key in load.now("keyworker")
        if load.leave_now(key.member)
        and not [
            other
            for other in load.now(*KEYWORKING, patient=key.patient)
            if other.member != key.member and not load.leave_now(other.member)
        ]
    }


def gp_accountable_for_life_while_key_workers_change(load: Caseload) -> set[str]:
    found = set()
    for gp in load.now("accountable-professional"):
        role = load.by_ref[gp.member]
        codes = {c["code"] for concept in role.get("code", []) for c in concept["coding"]}
        since_registration = gp.start == Day.fromisoformat(gp.care_team["period"]["start"])
        decade = gp.start <= load.today - datetime.timedelta(days=10 * 365)
        if SNOMED_GP not in codes or gp.end is not None or not since_registration or not decade:
            continue
        key_workers = [s for s in load.seats if s.role == "keyworker" and s.patient == gp.patient]
        social_care = {
            s.member
            for s in key_workers
            if load.by_ref[s.member]["organization"] != role["organization"]
        }
        if len(social_care) >= 2 and any(
            s.end is not None and s.end < load.today for s in key_workers
        ):
            found.add(gp.patient)
    return found


def believes_someone_else_is_their_key_worker(load: Caseload) -> set[str]:
    found = set()
    for seen_often in load.now("case-team-member"):
        note = " ".join(n["text"] for n in seen_often.care_team.get("note", []))
        real = load.now("keyworker", patient=seen_often.patient)
        if not real or seen_often.member in {s.member for s in real}:
            continue
        names = [load.person(seen_often.member), *(load.person(s.member) for s in real)]
        if "key worker" in note and all(name in note for name in names):
            found.add(seen_often.patient)
    return found


def one_colleague_does_all_the_paperwork(load: Caseload) -> set[str]:
    found = set()
    for plan in load.of_type("CarePlan"):
        patient = plan["subject"]["reference"]
        tasks = [a["detail"] for a in plan["activity"] if a["detail"]["kind"] == "Task"]
        doers = {p["reference"] for task in tasks for p in task.get("performer", [])}
        if len(tasks) < 2 or len(doers) != 1 or any("performer" not in t for t in tasks):
            continue
        (doer,) = doers
        key_workers = {s.member for s in load.now(*KEYWORKING, patient=patient)}
        in_case_team = doer in {s.member for s in load.now("case-team-member", patient=patient)}
        if key_workers and in_case_team and doer not in key_workers | {plan["author"]["reference"]}:
            found.add(patient)
    return found


FORMS: list[tuple[str, Callable[[Caseload], set[str]]]] = [
    ("pat-amara-okafor", one_key_worker_for_one_person),
    ("pat-george-wilson", one_key_worker_for_several_people),
    ("pat-siobhan-murphy", two_key_workers_share_one_person),
    ("pat-mohammed-iqbal", case_team_around_one_person),
    ("pat-eileen-brennan", no_key_worker),
    ("pat-jamal-campbell", key_workers_rotate_yearly),
    ("pat-margaret-evans", same_key_worker_for_years),
    ("pat-harjit-kaur", key_worker_on_leave_with_cover),
    ("pat-lewis-fraser", key_worker_on_leave_without_cover),
    ("pat-winston-baptiste", gp_accountable_for_life_while_key_workers_change),
    ("pat-doreen-atkinson", believes_someone_else_is_their_key_worker),
    ("pat-yusuf-ali", one_colleague_does_all_the_paperwork),
]

# Forms that the gaps report flags: only the patient documented for them may show them.
GAPS = {no_key_worker, key_worker_on_leave_without_cover}


@pytest.mark.parametrize("today", DAYS, ids=str)
@pytest.mark.parametrize(("patient", "form"), FORMS, ids=[f.__name__ for _, f in FORMS])
def test_each_form_of_keyworking_is_shown(
    patient: str, form: Callable[[Caseload], set[str]], today: Day
) -> None:
    shown = form(caseload(today))
    if form in GAPS:
        assert shown == {f"Patient/{patient}"}
    else:
        assert f"Patient/{patient}" in shown


def test_each_patient_is_the_example_of_one_form() -> None:
    examples = [patient for patient, _ in FORMS]
    assert len(set(examples)) == len(examples)
    assert set(examples) == {p["id"] for p in caseload(DAYS[0]).of_type("Patient")}


# --- Personal plans -----------------------------------------------------------------------------


@pytest.mark.parametrize("today", DAYS, ids=str)
def test_everyone_with_a_key_worker_has_one_plan_written_by_a_key_worker(today: Day) -> None:
    load = caseload(today)
    plans = defaultdict(list)
    for plan in load.of_type("CarePlan"):
        plans[plan["subject"]["reference"]].append(plan)
    for patient in load.of_type("Patient"):
        reference = f"Patient/{patient['id']}"
        key_workers = load.now("keyworker", patient=reference)
        assert len(plans[reference]) == (1 if key_workers else 0), reference
        for plan in plans[reference]:
            (team,) = plan["careTeam"]
            assert load.by_ref[team["reference"]]["subject"]["reference"] == reference
            assert plan["author"]["reference"] in {s.member for s in key_workers}
            assert 3 <= len(plan["activity"]) <= 6
            for activity in plan["activity"]:
                assert activity["detail"]["kind"] in {"Appointment", "Task"}


@pytest.mark.parametrize("today", DAYS, ids=str)
def test_one_plan_review_is_overdue_and_one_activity_has_no_performer(today: Day) -> None:
    overdue, unassigned = set(), set()
    for plan in caseload(today).of_type("CarePlan"):
        for activity in plan["activity"]:
            detail = activity["detail"]
            scheduled = detail.get("scheduledPeriod", {}).get("start")
            pending = detail["code"]["text"] == REVIEW and detail["status"] == "not-started"
            if pending and scheduled is not None and Day.fromisoformat(scheduled) < today:
                overdue.add(plan["subject"]["reference"])
            if "performer" not in detail:
                unassigned.add(plan["subject"]["reference"])
    assert overdue == {"Patient/pat-george-wilson"}
    assert unassigned == {"Patient/pat-lewis-fraser"}
