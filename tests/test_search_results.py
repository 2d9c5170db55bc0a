"""What a search returns besides the matches: includes, paging, totals, summaries, elements,
unknown-parameter handling, and how the registry publishes it all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from service.routes import search as search_routes
from service.search.parameters import search_parameter_resources
from tests.conftest import BASE
from tests.test_search_seed import FHIR, ROLE, SEED, seed

Bundle = dict[str, Any]


async def _bundle(client: httpx.AsyncClient, url: str, **headers: str) -> Bundle:
    response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    body: Bundle = response.json()
    return body


def _entries(bundle: Bundle, mode: str) -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    ]


def _link(bundle: Bundle, relation: str) -> str | None:
    return next((x["url"] for x in bundle["link"] if x["relation"] == relation), None)


async def test_include_revinclude_iterate_and_wildcards(client: httpx.AsyncClient) -> None:
    await seed(client)
    found = await _bundle(client, "/CareTeam?_id=ct-1&_include=CareTeam:participant")
    assert _entries(found, "match") == ["CareTeam/ct-1"]
    assert _entries(found, "include") == ["Practitioner/pr-1", "Practitioner/pr-3"]
    typed = await _bundle(client, "/CareTeam?_id=ct-2&_include=CareTeam:participant:RelatedPerson")
    assert _entries(typed, "include") == ["RelatedPerson/rp-1"]
    everything = await _bundle(client, "/CareTeam?_id=ct-1&_include=*")
    assert _entries(everything, "include") == [
        "Practitioner/pr-1",
        "Practitioner/pr-3",
        "Patient/pat-1",
    ]
    rev = await _bundle(client, "/CareTeam?_id=ct-1,ct-3&_revinclude=CarePlan:care-team")
    assert _entries(rev, "include") == ["CarePlan/cp-1", "CarePlan/cp-3"]
    reverse_all = await _bundle(client, "/Practitioner?_id=pr-2&_revinclude=*")
    assert _entries(reverse_all, "include") == [
        "PractitionerRole/role-2",
        "CareTeam/ct-3",
        "CareTeam/ct-4",
    ]
    # one extra hop: CareTeam -> CarePlan (revinclude) -> Practitioner performer (iterate)
    hop = await _bundle(
        client,
        "/CareTeam?_id=ct-1&_revinclude=CarePlan:care-team&_include:iterate=CarePlan:performer",
    )
    assert _entries(hop, "include") == ["CarePlan/cp-1", "CarePlan/cp-3", "Practitioner/pr-1"]
    # a resource both matched and included appears once, as a match
    both = await _bundle(client, "/CarePlan?_include=CarePlan:based-on")
    assert _entries(both, "match") == ["CarePlan/cp-1", "CarePlan/cp-2", "CarePlan/cp-3"]
    assert _entries(both, "include") == []
    # every care-record write leaves a Provenance: US Core's _revinclude=Provenance:target
    provenance = await _bundle(client, "/CareTeam?_id=ct-1&_revinclude=Provenance:target")
    [(included, record)] = [
        (e["search"]["mode"], e["resource"])
        for e in provenance["entry"]
        if e["resource"]["resourceType"] == "Provenance"
    ]
    assert included == "include"
    assert record["target"][0]["reference"].startswith("CareTeam/ct-1/_history/")


async def test_keyset_pages_stay_correct_while_resources_change(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    first = await _bundle(client, "/CareTeam?_sort=-date&_count=2&_total=accurate")
    assert first["total"] == 5
    assert _entries(first, "match") == ["CareTeam/ct-1", "CareTeam/ct-4"]
    assert _link(first, "previous") is None
    # between page fetches: a new team sorting before the cursor, and an edit of a later one
    new_team = {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": "Patient/pat-2"},
        "period": {"start": "2030-01-01"},
    }
    assert (await client.post("/CareTeam", json=new_team, headers=FHIR)).status_code == 201
    ct5 = next(r for r in SEED if r["id"] == "ct-5")
    assert (
        await client.put("/CareTeam/ct-5", json={**ct5, "name": "renamed"}, headers=FHIR)
    ).status_code == 200
    url = _link(first, "next")
    assert url is not None
    second = await _bundle(client, url)
    assert _entries(second, "match") == ["CareTeam/ct-2", "CareTeam/ct-5"]
    url = _link(second, "next")
    assert url is not None
    third = await _bundle(client, url)
    assert _entries(third, "match") == ["CareTeam/ct-3"]
    assert _link(third, "next") is None
    back = _link(third, "previous")
    assert back is not None
    assert _entries(await _bundle(client, back), "match") == ["CareTeam/ct-2", "CareTeam/ct-5"]
    # the self link repeats the query without the cursor
    assert _link(second, "self") == "http://test/fhir/CareTeam?_sort=-date&_count=2&_total=accurate"


async def test_cursors_are_tamper_evident_and_bound_to_their_search(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    url = _link(await _bundle(client, "/Patient?_count=1"), "next")
    assert url is not None
    cursor = url.split("_cursor=")[1]
    forged = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    assert (await client.get(f"/Patient?_count=1&_cursor={forged}")).status_code == 400
    assert (await client.get(f"/CareTeam?_count=1&_cursor={cursor}")).status_code == 400
    assert (await client.get(f"/Patient?_sort=family&_cursor={cursor}")).status_code == 400


async def test_count_total_summary_and_elements(client: httpx.AsyncClient) -> None:
    await seed(client)
    capped = await _bundle(client, "/CareTeam?_count=100000")
    assert len(_entries(capped, "match")) == 5
    counted = await _bundle(client, "/CareTeam?status=active&_summary=count")
    assert counted["total"] == 3
    assert counted.get("entry", []) == []  # R4 JSON has no empty array
    zero = await _bundle(client, "/CareTeam?_count=0")
    assert zero["total"] == 5 and zero.get("entry", []) == []
    assert "total" not in await _bundle(client, "/CareTeam?_total=none")
    summary = await _bundle(client, "/Patient?_id=pat-1&_summary=true")
    patient = summary["entry"][0]["resource"]
    assert "generalPractitioner" not in patient and patient["name"][0]["family"] == "Müller"
    assert patient["meta"]["tag"][-1]["code"] == "SUBSETTED"
    elements = await _bundle(client, "/CareTeam?_id=ct-1&_elements=status,subject")
    team = elements["entry"][0]["resource"]
    assert set(team) == {"resourceType", "id", "meta", "status", "subject"}
    data = await _bundle(client, "/CareTeam?_id=ct-1&_summary=data")
    assert data["entry"][0]["resource"]["participant"]


async def test_unknown_parameters_are_400_unless_lenient(client: httpx.AsyncClient) -> None:
    """An unknown parameter is refused, naming it (not ignored with every record answered);
    with ``Prefer: handling=lenient`` it is ignored, and the links carry only what was applied."""
    await seed(client)
    query = (
        "/Patient?nonsense=1&_unknown=2&family=mul&general-practitioner.nonsense=3"
        "&_has:CareTeam:subject:nonsense=4&_count=1"
    )
    ignored = ["nonsense", "general-practitioner.nonsense", "_has:CareTeam:subject:nonsense"]
    ignored.append("_unknown")
    for headers in (
        {},
        {"Prefer": "handling=strict"},
        {"Prefer": "return=minimal, handling=strict"},
    ):
        refused = await client.get(query, headers=headers)
        assert refused.status_code == 400, headers
        issues = refused.json()["issue"]
        assert [i["expression"] for i in issues] == [[name] for name in ignored]
        assert {i["code"] for i in issues} == {"not-supported"}
        assert "nonsense" in issues[0]["diagnostics"]
    lenient = await _bundle(client, query, Prefer="handling=lenient")
    assert _entries(lenient, "match") == ["Patient/pat-1"]
    assert _link(lenient, "self") == f"{BASE}/Patient?family=mul&_count=1"
    following = _link(lenient, "next")
    assert following is not None and "nonsense" not in following and "_unknown" not in following
    outcome = lenient["entry"][-1]
    assert outcome["search"]["mode"] == "outcome"
    warning = outcome["resource"]["issue"][0]
    assert warning["severity"] == "warning" and warning["expression"] == ignored
    second = await _bundle(client, following.removeprefix(BASE))
    assert _entries(second, "match") == ["Patient/pat-2"]
    posted = await client.post(
        "/Patient/_search",
        content="nonsense=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 400
    assert posted.json()["issue"][0]["expression"] == ["nonsense"]


async def test_capability_statement_lists_includes_from_the_registry(
    client: httpx.AsyncClient,
) -> None:
    statement = (await client.get("/metadata")).json()
    careteam = next(r for r in statement["rest"][0]["resource"] if r["type"] == "CareTeam")
    assert "CareTeam:participant" in careteam["searchInclude"]
    assert "CarePlan:care-team" in careteam["searchRevInclude"]
    names = {p["name"] for p in careteam["searchParam"]}
    assert {"_id", "_lastUpdated", "role", "participant-role", "patient", "date"} <= names


def test_custom_parameters_are_published_as_search_parameters() -> None:
    published = {p["code"]: p for p in search_parameter_resources()}
    assert set(published) == {"role", "participant-role"}
    role = published["role"]
    assert role["url"].endswith("/SearchParameter/CareTeam-role")
    assert role["expression"] == "CareTeam.participant.role"
    assert role["base"] == ["CareTeam"] and role["type"] == "token"
    composite = published["participant-role"]
    assert [c["expression"] for c in composite["component"]] == ["member", "role"]
    assert composite["component"][1]["definition"] == role["url"]
    assert ROLE.startswith("https://keyworker-fhir.org/")


async def test_every_sort_pages_one_at_a_time_in_the_same_order(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    for query in (
        "/Patient?_sort=family",
        "/Patient?_sort=-birthdate",
        "/Practitioner?_sort=-name",
        "/CareTeam?_sort=status,-date",
        "/CareTeam?_sort=date",
        "/CarePlan?_sort=-_lastUpdated",
    ):
        whole = _entries(await _bundle(client, query), "match")
        paged: list[str] = []
        url: str | None = f"{query}&_count=1"
        while url:
            page = await _bundle(client, url)
            paged.extend(_entries(page, "match"))
            url = _link(page, "next")
        assert paged == whole, query
        backwards: list[str] = []
        url = f"{query}&_count=1"
        last = None
        while url:
            last = await _bundle(client, url)
            url = _link(last, "next")
        while last is not None:
            backwards = _entries(last, "match") + backwards
            previous = _link(last, "previous")
            last = await _bundle(client, previous) if previous else None
        assert backwards == whole, query


async def test_page_size_and_search_limits_come_from_settings(
    app_factory: Any,
) -> None:
    client = await app_factory(max_page_size=2, default_page_size=1, search_max_parameters=3)
    await seed(client)
    assert len(_entries(await _bundle(client, "/CareTeam"), "match")) == 1
    capped = await _bundle(client, "/CareTeam?_count=100")
    assert len(_entries(capped, "match")) == 2 and _link(capped, "next")
    refused = await client.get("/CareTeam?status=active&status=active&status=active&_count=2")
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["code"] == "too-costly"


INCLUDE_SEARCHES = (
    "/CareTeam?_include=CareTeam:participant&_count=2",
    "/CareTeam?_include=*&_sort=status,-date&_count=2",
    "/Patient?_revinclude=CareTeam:subject&_sort=-birthdate&_count=1",
    "/CareTeam?_revinclude=CarePlan:care-team&_include=CareTeam:subject&_count=3",
    "/Practitioner?_revinclude=*&_count=1",
    "/CarePlan?_include=CarePlan:based-on&_count=2",
    "/CareTeam?_include=*&_revinclude=*&_count=50",
)


async def _pages(client: httpx.AsyncClient, url: str) -> list[list[tuple[str, str]]]:
    """Every page forward, then back again from the last, as (mode, reference) entries."""
    pages, seen = [], []
    bundle: Bundle | None = await _bundle(client, url)
    while bundle is not None:
        seen.append(bundle)
        following = _link(bundle, "next")
        bundle = await _bundle(client, following) if following else None
    back = _link(seen[-1], "previous")
    while back:
        earlier = await _bundle(client, back)
        seen.append(earlier)
        back = _link(earlier, "previous")
    for bundle in seen:
        pages.append(
            [
                (e["search"]["mode"], f"{e['resource']['resourceType']}/{e['resource'].get('id')}")
                for e in bundle.get("entry", [])
            ]
        )
    return pages


async def test_a_page_with_its_includes_in_one_statement_answers_as_two_would(
    client: httpx.AsyncClient,
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL a page and its first include round are one statement; the answers, page
    by page in both directions and with the include limit cutting, are those of the page and
    the round run one after the other."""
    await seed(client)
    limited = await app_factory(search_max_included=2)
    clients = (client, limited)
    combined = [await _pages(c, url) for c in clients for url in INCLUDE_SEARCHES]
    monkeypatch.setattr(search_routes, "page_links", lambda *_: ())
    separate = [await _pages(c, url) for c in clients for url in INCLUDE_SEARCHES]
    assert combined == separate
    assert any(mode == "include" for pages in combined for page in pages for mode, _ in page)
