"""Hostile and random searches: never a 500, never a request that runs unbounded.

Each request must answer within ``_SECONDS`` (``asyncio.wait_for``), and the service caps the
work a search may ask for (parameters, values, value length, includes), answering 400
``too-costly`` past the caps rather than running the query.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_search_seed import seed

_SECONDS = 10.0
_TYPES = ["Patient", "CareTeam", "CarePlan", "Practitioner", "Organization"]
_KEYS = [
    "_id",
    "_lastUpdated",
    "identifier",
    "identifier:of-type",
    "family",
    "name:contains",
    "birthdate",
    "date",
    "status:not",
    "subject",
    "subject:identifier",
    "subject.name",
    "participant:Practitioner.name",
    "participant-role",
    "role:text",
    "_has:CareTeam:subject:status",
    "_include",
    "_revinclude",
    "_include:iterate",
    "_sort",
    "_count",
    "_total",
    "_summary",
    "_elements",
    "_cursor",
]
NASTY: list[str] = [
    "family=' OR 1=1 --",
    "family=x'); DROP TABLE resource; --",
    "_id=1 UNION SELECT content FROM resource",
    "family=%00",
    "family=a%00b",
    "%00=1",
    "family=" + "a" * 100_000,
    "identifier=" + "|" * 5000,
    "family=Zo%C3%AB%CC%81%E2%80%AE%F0%9F%98%80",
    "name:contains=%25%25_%5C",
    "subject." * 50 + "name=x",
    "subject.subject.name=x",
    "_has:CareTeam:subject:_has:CarePlan:subject:_has:CareTeam:subject:status=x",
    "_has:Nothing:x:y=z",
    "&".join(f"family=a{i}" for i in range(500)),
    "&".join(f"p{i}=1" for i in range(500)),
    "family=" + ",".join("x" for _ in range(5000)),
    "_include=*&_include:iterate=*&_revinclude=*&_revinclude:iterate=*",
    "&".join("_include=*" for _ in range(100)),
    "_count=99999999999999999999999",
    "_count=-1",
    "_sort=-",
    "_sort=" + ",".join(["name"] * 200),
    "birthdate=ge" + "9" * 60,
    "birthdate=0000-01-01",
    "birthdate=ap9999-12-31",
    "birthdate=lt0001-01-01",
    "_lastUpdated=gt2020-01-01T25:61:61Z",
    "subject=Patient/..%2F..%2Fetc",
    "subject=" + "Patient/" * 300,
    "subject:Nothing=x",
    "participant-role=$",
    "participant-role=$$$",
    "identifier:of-type=||",
    "_cursor=" + "A" * 10_000,
    "_cursor=%ZZ",
    "_elements=" + ",".join(f"e{i}" for i in range(3000)),
    "_summary=count&_total=accurate&_count=0",
    "%ZZ=%ZZ",
    "=",
    "&&&",
    "family:exact:contains=x",
    "date:missing=true,false",
]


async def _get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET, or POST ``_search`` with a form body when the query is too long for a URL."""
    path, _, query = url.partition("?")
    if len(url) < 30_000:
        return await asyncio.wait_for(client.get(url), _SECONDS)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    request = client.post(f"{path}/_search", content=query, headers=form)
    return await asyncio.wait_for(request, _SECONDS)


async def test_nasty_searches_never_fail_and_finish_quickly(client: httpx.AsyncClient) -> None:
    await seed(client)
    for query in NASTY:
        for resource_type in ("Patient", "CareTeam"):
            response = await _get(client, f"/{resource_type}?{query}")
            assert response.status_code in (200, 400), (query[:120], response.text[:300])
            assert response.json()["resourceType"] in ("Bundle", "OperationOutcome")
    too_many = "&".join(f"family=a{i}" for i in range(500))
    refused = await _get(client, f"/Patient?{too_many}")
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["code"] == "too-costly"


_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
_PAIRS = st.lists(
    st.tuples(st.one_of(st.sampled_from(_KEYS), _TEXT), _TEXT), min_size=1, max_size=8
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(resource_type=st.sampled_from(_TYPES), pairs=_PAIRS, raw=st.booleans())
async def test_random_searches_never_fail(
    client: httpx.AsyncClient, resource_type: str, pairs: list[tuple[str, str]], raw: bool
) -> None:
    if raw:  # the text as typed, encoding only what a URL cannot hold
        query = "&".join(f"{quote(k, safe=':._$|,')}={quote(v, safe=':/$|,')}" for k, v in pairs)
    else:
        query = str(httpx.QueryParams(pairs))
    response = await _get(client, f"/{resource_type}?{query}")
    assert response.status_code in (200, 400, 403), (pairs, response.text[:300])
    if response.status_code == 200:
        assert response.json()["resourceType"] == "Bundle"


async def test_a_search_past_its_time_limit_is_refused_not_left_running(
    app_factory: Any, backend: str
) -> None:
    client = await app_factory(search_timeout_ms=1, db_pool_size=1)
    await seed(client)
    heavy = "&".join(
        f"participant.name=a{i},b{i},c{i}&participant.active=true,false" for i in range(20)
    )
    response = await _get(client, f"/CareTeam?{heavy}&_include=*&_revinclude=*&_total=accurate")
    if backend == "postgresql":  # SQLite has no statement timeout: the caps bound it
        assert response.status_code == 400, response.text[:300]
        assert response.json()["issue"][0]["code"] == "too-costly"
    else:
        assert response.status_code == 200
    # The cancelled search's connection went back to the pool closed cleanly: reads, writes
    # and searches that follow on it work (a pool of one, so they reuse it).
    for _ in range(3):
        assert (await _get(client, "/CareTeam?_count=1")).status_code in (200, 400)
        created = await client.post("/Patient", json={"resourceType": "Patient"})
        assert created.status_code == 201, created.text
        assert (await _get(client, f"/Patient/{created.json()['id']}")).status_code == 200
