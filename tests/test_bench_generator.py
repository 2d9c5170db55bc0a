"""The benchmark's population generator: deterministic, and valid by the service's own rules.

Why test it: a benchmark that loads different data each run cannot be compared across runs, and
one that loads data the service refuses measures nothing (bench/run.py would stop at the load).
"""

from __future__ import annotations

import datetime
import random
from typing import Any

import orjson

from bench.generate import (
    BUNDLE_ENTRIES,
    NHS,
    ROLE,
    Config,
    Population,
    is_valid_nhs_number,
)
from fhir_mappings.keyworking.rules import care_team_issues

AS_OF = datetime.date(2026, 1, 15)


def _bundles(patients: int, seed: int = 7) -> tuple[list[dict[str, Any]], Population]:
    population = Population(Config(patients, seed, AS_OF))
    return [batch.bundle for batch in population.batches()], population


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    first, _ = _bundles(150)
    again, _ = _bundles(150)
    other, _ = _bundles(150, seed=8)
    assert orjson.dumps(first) == orjson.dumps(again)
    assert orjson.dumps(first) != orjson.dumps(other)


def test_reference_data_first_then_patients_in_bundles_of_at_most_100() -> None:
    bundles, population = _bundles(300)
    kinds = [
        {e["resource"]["resourceType"] for e in b["entry"] if e["request"]["method"] == "PUT"}
        for b in bundles
    ]
    first_patient = next(i for i, k in enumerate(kinds) if not k)
    assert all(kinds[:first_patient]) and not any(kinds[first_patient:])
    assert all(len(b["entry"]) <= BUNDLE_ENTRIES for b in bundles)
    assert population.stats.patients == 300
    assert population.stats.resources == sum(len(b["entry"]) for b in bundles)


def _period_start(period: dict[str, str]) -> datetime.date:
    return datetime.date.fromisoformat(period["start"])


def test_every_patient_is_valid_and_self_contained() -> None:
    bundles, _ = _bundles(400)
    numbers: list[str] = []
    for bundle in bundles[:]:
        entries = bundle["entry"]
        if entries[0]["request"]["method"] == "PUT":
            continue
        urls = {e["fullUrl"] for e in entries}
        for entry in entries:
            resource = entry["resource"]
            if resource["resourceType"] == "Patient":
                (identifier,) = resource["identifier"]
                assert identifier["system"] == NHS
                assert is_valid_nhs_number(identifier["value"])
                numbers.append(identifier["value"])
            elif resource["resourceType"] == "CareTeam":
                assert resource["subject"]["reference"] in urls
                participants = resource["participant"]
                assert 2 <= len(participants) <= 5
                codes = [p["role"][0]["coding"][0] for p in participants]
                assert all(c["system"] == ROLE for c in codes)
                assert [c["code"] for c in codes].count("accountable-professional") <= 1
                team_start = _period_start(resource["period"])
                assert all(_period_start(p["period"]) >= team_start for p in participants)
            else:
                assert resource["resourceType"] == "CarePlan"
                assert 3 <= len(resource["activity"]) <= 6
                assert resource["careTeam"][0]["reference"] in urls
    assert len(numbers) == 400 == len(set(numbers))


def test_roughly_the_issue_7_proportions() -> None:
    _, population = _bundles(4000)
    stats = population.stats
    assert stats.organizations == 20 and stats.roles == 800
    assert 0.02 <= stats.patients_with_gap / stats.patients <= 0.045
    assert 0.02 <= stats.keyworkers_on_leave / stats.keyworker_roles <= 0.09
    assert stats.patients_keyworker_on_leave_covered > 0
    assert stats.patients_keyworker_on_leave_uncovered > 0


def test_full_size_defaults_match_the_issue() -> None:
    config = Config()
    assert (config.patients, config.organizations, config.roles) == (100_000, 500, 20_000)


def test_nhs_number_check() -> None:
    assert is_valid_nhs_number("9434765919")
    assert not is_valid_nhs_number("9434765918")
    assert not is_valid_nhs_number("943476591")


class _Extremes(random.Random):
    """Draws every range at its edge: the newest team, the latest join, the oldest leaving."""

    def randint(self, a: int, b: int) -> int:
        return a if (a, b) == (30, 3000) else b

    def random(self) -> float:
        return 0.0  # every patient a gap, every gap a GP who left


def test_even_the_edge_of_every_range_makes_care_teams_the_service_accepts() -> None:
    """A GP who left 25 days ago cannot have joined a team started 30 days ago 20 days in:
    the 1,000,000-patient load met such a team and was refused (period-order)."""
    population = Population(Config(200, 7, AS_OF))
    population._rng = _Extremes(7)
    teams = [
        e["resource"]
        for batch in population.batches()
        for e in batch.bundle["entry"]
        if e["resource"]["resourceType"] == "CareTeam"
    ]
    assert teams
    assert all(care_team_issues(team) == [] for team in teams)
