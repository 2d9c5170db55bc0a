"""Property: for random combinations of supported parameters, the service returns exactly the
resources a straightforward evaluation of the same criteria over the same JSON selects, in
creation order. The evaluator below is deliberately naive and independent of the service's
index code: it reads the seeded resources directly and applies R4's rules.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_search_seed import NHS, ROLE, SEED, seed

Resource = dict[str, Any]
Query = list[tuple[str, str]]
_MIN = datetime(1, 1, 1, tzinfo=UTC)
_MAX = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_TICK = timedelta(microseconds=1)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _span(text: str) -> tuple[datetime, datetime]:
    """The instants a date, year-month, year or UTC dateTime denotes, inclusive."""
    if "T" in text:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment, moment + timedelta(seconds=1) - _TICK
    parts = [int(p) for p in text.split("-")]
    start = date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    if len(parts) == 3:
        end = start + timedelta(days=1)
    elif len(parts) == 2:
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        end = start.replace(year=start.year + 1)
    low = datetime(start.year, start.month, start.day, tzinfo=UTC)
    return low, datetime(end.year, end.month, end.day, tzinfo=UTC) - _TICK


def _compare(prefix: str, target: tuple[datetime, datetime], value: str) -> bool:
    low, high = target
    v_low, v_high = _span(value)
    return {
        "eq": low >= v_low and high <= v_high,
        "ne": not (low >= v_low and high <= v_high),
        "lt": low < v_low,
        "le": low <= v_high,
        "gt": high > v_high,
        "ge": high >= v_low,
        "sa": low > v_high,
        "eb": high < v_low,
    }[prefix]


def _period(resource: Resource, field: str) -> list[tuple[datetime, datetime]]:
    value = resource.get(field)
    if value is None:
        return []
    if isinstance(value, str):
        return [_span(value)]
    low = _span(value["start"])[0] if "start" in value else _MIN
    high = _span(value["end"])[1] if "end" in value else _MAX
    return [(low, high)]


def _token(pairs: list[tuple[str | None, str]], value: str) -> bool:
    if "|" not in value:
        return any(code == value for _, code in pairs)
    system, _, code = value.partition("|")
    if not code:
        return any(s == system for s, _ in pairs)
    return any(s == (system or None) and c == code for s, c in pairs)


def _tokens(resource: Resource, name: str) -> list[tuple[str | None, str]]:
    if name == "identifier":
        return [(i.get("system"), i["value"]) for i in resource.get("identifier", [])]
    if name == "role":
        return [
            (c.get("system"), c["code"])
            for p in resource.get("participant", [])
            for r in p.get("role", [])
            for c in r.get("coding", [])
        ]
    value = resource.get(name)
    if isinstance(value, bool):
        return [(None, "true" if value else "false")]
    return [(None, value)] if isinstance(value, str) else []


def _matches(resource: Resource, key: str, values: list[str]) -> bool:
    name, _, modifier = key.partition(":")
    if name == "family":
        families = [n["family"] for n in resource.get("name", []) if "family" in n]
        test: Callable[[str, str], bool] = {
            "": lambda f, v: _fold(f).startswith(_fold(v)),
            "exact": lambda f, v: f == v,
            "contains": lambda f, v: _fold(v) in _fold(f),
        }[modifier]
        return any(test(f, v) for f in families for v in values)
    if name in ("birthdate", "date"):
        spans = _period(resource, "birthDate" if name == "birthdate" else "period")
        if modifier == "missing":
            return (not spans) == (values[0] == "true")
        return any(_compare(v[:2], s, v[2:]) for s in spans for v in values)
    if name == "patient":
        reference = resource.get("subject", {}).get("reference", "")
        return any(reference in (v, f"Patient/{v}") for v in values)
    pairs = _tokens(resource, name)
    if modifier == "missing":
        return (not pairs) == (values[0] == "true")
    found = any(_token(pairs, v) for v in values)
    return not found if modifier == "not" else found


def _expected(resource_type: str, query: Query) -> list[str]:
    return [
        r["id"]
        for r in SEED
        if r["resourceType"] == resource_type
        and all(_matches(r, k, v.split(",")) for k, v in query)
    ]


_DATES = st.builds(
    lambda y, m, d, precision: "-".join([f"{y:04d}", f"{m:02d}", f"{d:02d}"][:precision]),
    # mostly the years the seeded dates fall in, where the prefixes' boundaries are
    st.one_of(st.sampled_from([1950, 1988, 2001, 2022, 2023, 2024, 2025]), st.integers(1945, 2030)),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(1, 3),
)
_PREFIXED = st.builds(
    lambda p, d: p + d, st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge", "sa", "eb"]), _DATES
)


def _values(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(strategy, min_size=1, max_size=2).map(",".join)


_NAMES = st.sampled_from(["mu", "Müller", "MULL", "Mül", "O'B", "brie", "LLER", "Smith", "x"])
_PATIENT_CRITERIA = st.one_of(
    st.tuples(st.sampled_from(["family", "family:exact", "family:contains"]), _values(_NAMES)),
    st.tuples(st.just("gender"), _values(st.sampled_from(["male", "female", "other"]))),
    st.tuples(st.sampled_from(["active", "active:not"]), st.sampled_from(["true", "false"])),
    st.tuples(st.sampled_from(["identifier:missing"]), st.sampled_from(["true", "false"])),
    st.tuples(
        st.sampled_from(["identifier", "identifier:not"]),
        _values(st.sampled_from([f"{NHS}|9434765919", "9434765870", f"{NHS}|", "|MRN-1"])),
    ),
    st.tuples(st.just("birthdate"), _values(_PREFIXED)),
)
_CARETEAM_CRITERIA = st.one_of(
    st.tuples(
        st.sampled_from(["status", "status:not"]),
        _values(st.sampled_from(["active", "inactive", "proposed"])),
    ),
    st.tuples(st.just("patient"), _values(st.sampled_from(["pat-1", "Patient/pat-2", "pat-3"]))),
    st.tuples(
        st.sampled_from(["role", "role:not"]),
        _values(st.sampled_from(["keyworker", f"{ROLE}|co-keyworker", "cover-keyworker"])),
    ),
    st.tuples(st.just("date"), _values(_PREFIXED)),
    st.tuples(st.just("date:missing"), st.sampled_from(["true", "false"])),
)
_SEARCHES = st.one_of(
    st.tuples(st.just("Patient"), st.lists(_PATIENT_CRITERIA, min_size=1, max_size=3)),
    st.tuples(st.just("CareTeam"), st.lists(_CARETEAM_CRITERIA, min_size=1, max_size=3)),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(search=_SEARCHES)
async def test_search_agrees_with_a_naive_evaluation(
    client: httpx.AsyncClient, search: tuple[str, Query]
) -> None:
    if (await client.get("/Patient/pat-1")).status_code != 200:
        await seed(client)  # once per database: the fixture outlives the examples
    resource_type, query = search
    response = await client.get(f"/{resource_type}?{urlencode(query)}")
    assert response.status_code == 200, response.text
    found = [e["resource"]["id"] for e in response.json().get("entry", [])]
    assert found == _expected(resource_type, query), query
