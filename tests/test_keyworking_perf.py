"""The fast paths of the keyworking operations, on SQLite and PostgreSQL.

``$accountable`` reads a person, their aliases, assignments and roles in one statement, and
``$accountability-gaps`` streams its Bundle while reading people a chunk at a time; these
tests pin what those shortcuts must not change.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from service.keyworking import answers
from tests.keyworking_world import (
    NHS,
    NHS_NUMBER,
    accountable,
    build,
    bundle_pages,
    care_team,
    ok,
    participant,
    parts,
)

TODAY = datetime.date.today()


async def test_nhs_number_and_patient_keys_are_one_person(client: httpx.AsyncClient) -> None:
    """A CareTeam naming pat-1 only by NHS number counts for pat-1, however pat-1 is asked."""
    await build(client)
    gp, kw = "PractitionerRole/r-gp", "PractitionerRole/r-kw"
    await ok(
        client,
        care_team([participant("accountable-professional", gp)], f"{NHS}|{NHS_NUMBER}"),
        "ct-a",
    )
    await ok(client, care_team([participant("keyworker", kw)]), "ct-k")
    answer = await accountable(client, f"{NHS}|{NHS_NUMBER}", "2026-03-01")
    assert answer["parameter"][0]["valueReference"] == {
        "reference": "Patient/pat-1",
        "display": "Jo Doe",
    }
    assert parts(answer, "accountable")[0]["careTeam"] == {"reference": "CareTeam/ct-a"}
    assert parts(answer, "keyworker")[0]["careTeam"] == {"reference": "CareTeam/ct-k"}
    for key in ("pat-1", "Patient/pat-1"):
        assert await accountable(client, key, "2026-03-01") == answer


async def test_an_nhs_number_two_patients_carry_is_the_first_in_code_point_order(
    client: httpx.AsyncClient,
) -> None:
    """Upper case sorts before lower case by code point, whatever the database's collation."""
    await build(client)
    for rid in ("pat-a", "Pat-z"):
        patient = {"resourceType": "Patient", "identifier": [{"system": NHS, "value": NHS_NUMBER}]}
        await ok(client, patient, rid)
    answer = await accountable(client, f"{NHS}|{NHS_NUMBER}", "2026-03-01")
    assert answer["parameter"][0]["valueReference"]["reference"] == "Patient/Pat-z"


async def _unserved(client: httpx.AsyncClient, n: int) -> None:
    """``n`` Patients nobody looks after: two gaps each (no accountable, no key worker)."""
    for i in range(n):
        await ok(client, {"resourceType": "Patient", "name": [{"family": f"U{i}"}]}, f"u-{i:03}")


def _ids(pages: list[dict[str, Any]]) -> list[str]:
    return [e["resource"]["id"] for page in pages for e in page.get("entry", [])]


async def test_a_large_gaps_page_streams_whole_and_matches_the_paged_report(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await build(client)
    await _unserved(client, 40)
    (whole,) = await bundle_pages(client, "/$accountability-gaps?_count=1000")
    assert whole["resourceType"] == "Bundle" and whole["type"] == "searchset"
    assert [link["relation"] for link in whole["link"]] == ["self"]
    assert len(whole["entry"]) == 82  # 41 people (pat-1 too) with two gaps each
    assert all(e["fullUrl"] == f"urn:uuid:{e['resource']['id']}" for e in whole["entry"])
    assert len(set(_ids([whole]))) == 82
    paged = await bundle_pages(client, "/$accountability-gaps?_count=7")
    assert len(paged) == 12 and _ids(paged) == _ids([whole])
    monkeypatch.setattr(answers, "_CHUNK", 3)  # many small batches: the same bytes' meaning
    assert _ids(await bundle_pages(client, "/$accountability-gaps?_count=1000")) == _ids([whole])
    (pretty,) = await bundle_pages(client, "/$accountability-gaps?_count=1000&_pretty=true")
    assert _ids([pretty]) == _ids([whole])


async def test_a_report_without_gaps_has_no_entry(client: httpx.AsyncClient) -> None:
    (page,) = await bundle_pages(client, "/$accountability-gaps")
    assert "entry" not in page  # FHIR JSON has no empty arrays
    assert page["link"][0]["relation"] == "self"


async def test_a_practitioners_roles_are_all_read_though_one_was_read_for_another_chunk(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pat-1's chunk reads r-kw (on leave); pat-2's Practitioner member needs r-kw2 too."""
    away = {"start": (TODAY - datetime.timedelta(days=5)).isoformat()}
    await build(client, leave={"r-kw": away})
    second = (await client.get("/PractitionerRole/r-kw2")).json()
    await ok(client, {**second, "practitioner": {"reference": "Practitioner/p-kw"}}, "r-kw2")
    await ok(client, {"resourceType": "Patient", "name": [{"family": "P2"}]}, "pat-2")
    gp = participant("accountable-professional", "PractitionerRole/r-gp")
    await ok(client, care_team([gp, participant("keyworker", "PractitionerRole/r-kw")]), "ct-1")
    practitioner = participant("keyworker", "Practitioner/p-kw")
    await ok(client, care_team([gp, practitioner], "Patient/pat-2"), "ct-2")
    monkeypatch.setattr(answers, "_CHUNK", 1)
    (page,) = await bundle_pages(client, "/$accountability-gaps?_count=1000")
    found = {
        (e["resource"]["patient"]["reference"], e["resource"]["code"]["coding"][0]["code"])
        for e in page["entry"]
    }
    assert found == {("Patient/pat-1", "keyworker-unavailable-no-cover")}


async def test_a_gaps_page_may_be_larger_than_a_search_page(
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    """The report streams, so its ``_count`` is capped by its own, larger, limit."""
    client = await app_factory(max_page_size=5, gaps_max_count=30)
    await build(client)
    await _unserved(client, 20)  # with pat-1: 42 gaps
    pages = await bundle_pages(client, "/$accountability-gaps?_count=1000")
    assert [len(page["entry"]) for page in pages] == [30, 12]
    searched = await client.get("/Patient", params={"_count": "1000"})
    assert len(searched.json()["entry"]) == 5
