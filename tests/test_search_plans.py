"""Search plans: SQL is built and compiled once per search shape, so values must never reach
the SQL text (a cached statement carrying one request's values would answer the next request
with them), and searches that differ only in their values must share one plan.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from service.db.tables import INDEXED_CHARACTERS
from service.search.criteria import parse
from service.search.sql import Planner

BASE = "https://keyworker.example/fhir"
NHS = "https://fhir.nhs.uk/Id/nhs-number"

# One query per kind of value the planner reads; each holds the marker "zq" or a date.
QUERIES = [
    ("CareTeam", [("subject:identifier", f"{NHS}|zq9001"), ("status", "active")]),
    ("CareTeam", [("_id", "zq-1,zq-2")]),
    ("CareTeam", [("subject", "Patient/zq-1"), ("participant", f"{BASE}/Practitioner/zq")]),
    ("CareTeam", [("subject:Patient", "zq-7")]),
    ("CareTeam", [("participant", "http://elsewhere.example/Practitioner/zq")]),
    ("CareTeam", [("status:not", "zq"), ("category:text", "zq_50%")]),
    ("CareTeam", [("date", "ge2024-01-01"), ("date", "ap2025-06"), ("_lastUpdated", "lt2026")]),
    ("Patient", [("name", "zq"), ("family:exact", "Zq"), ("given:contains", "zq")]),
    ("Patient", [("identifier", "|zq"), ("identifier", "http://zq.example|")]),
    ("CareTeam", [("subject.name", "zq"), ("_has:CarePlan:care-team:status", "zq")]),
    ("CareTeam", [("participant-role", "Practitioner/zq$keyworker")]),
]


def _plan(resource_type: str, pairs: list[tuple[str, str]]) -> tuple[object, dict[str, object]]:
    parsed = parse(resource_type, pairs)
    assert not parsed.unknown, parsed.unknown
    planner = Planner(BASE)
    return planner.match(resource_type, parsed.criteria), planner.params


@pytest.mark.parametrize(("resource_type", "pairs"), QUERIES)
@pytest.mark.parametrize("dialect", [postgresql.asyncpg.dialect(), sqlite.dialect()])
def test_values_are_parameters_never_sql_text(
    resource_type: str, pairs: list[tuple[str, str]], dialect: object
) -> None:
    parsed = parse(resource_type, pairs)
    planner = Planner(BASE)
    compiled = planner.where(parsed).compile(dialect=dialect)  # type: ignore[arg-type]
    # neither in the text nor among the constants the statement itself binds
    held = [str(bind.value) for bind in compiled.binds.values() if not bind.required]
    for text in (str(compiled), *held):
        assert "zq" not in text.lower() and "202" not in text, text
    assert planner.params


@pytest.mark.parametrize(("resource_type", "pairs"), QUERIES)
def test_searches_differing_only_in_values_share_one_plan(
    resource_type: str, pairs: list[tuple[str, str]]
) -> None:
    other = [(name, value.replace("zq", "xy").replace("202", "199")) for name, value in pairs]
    plan, params = _plan(resource_type, pairs)
    other_plan, other_params = _plan(resource_type, other)
    assert plan == other_plan
    assert params.keys() == other_params.keys()
    assert params != other_params


def test_a_different_form_of_value_is_a_different_plan() -> None:
    """``system|code`` and ``code`` compare different columns: they must not share SQL."""
    with_system, _ = _plan("Patient", [("identifier", f"{NHS}|9000000009")])
    code_only, _ = _plan("Patient", [("identifier", "9000000009")])
    no_system, _ = _plan("Patient", [("identifier", "|9000000009")])
    assert len({with_system, code_only, no_system}) == 3


@pytest.mark.parametrize(("resource_type", "pairs"), QUERIES)
@pytest.mark.parametrize("dialect", [postgresql.asyncpg.dialect(), sqlite.dialect()])
def test_indexed_heads_are_written_as_their_index_is_built(
    resource_type: str, pairs: list[tuple[str, str]], dialect: object
) -> None:
    """A database uses an expression index only for the very expression it was built on:
    ``substr(code, $1, $2)`` is not ``substr(code, 1, 256)`` to it, and every search by a
    token or a name scanned its whole index table."""
    parsed = parse(resource_type, pairs)
    compiled = str(Planner(BASE).where(parsed).compile(dialect=dialect))  # type: ignore[arg-type]
    heads = re.findall(r"substr\((idx_\w+\.\w+), ([^()]*)\)", compiled)
    for column, bounds in heads:
        assert bounds == f"1, {INDEXED_CHARACTERS}", f"substr({column}, {bounds})"
