"""The README's "who do I contact for this person?" walkthrough, on the loaded demo data."""

from __future__ import annotations

import httpx

from service.demo_loader import load_demo
from tests.conftest import settings_for
from tests.keyworking_world import NHS, accountable, contact, gap_codes, parts


async def test_the_readme_walkthrough_answers_as_documented(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await load_demo(settings_for(database_url))

    amara = await accountable(client, f"{NHS}|9990001073")
    assert parts(amara, "accountable")[0]["member"]["display"].startswith("Dr Helen Shaw")
    assert contact(amara) == ("PractitionerRole/prr-sw-david-mensah", "key worker")

    harjit = await accountable(client, f"{NHS}|9990001561")
    who, reason = contact(harjit) or ("", "")
    assert who == "PractitionerRole/prr-sw-aisha-rahman"
    assert reason.startswith("key worker Priya Sharma (Social worker) Long-term leave until ")
    assert reason.endswith("; cover key worker")
    assert gap_codes(harjit) == []

    lewis = await accountable(client, f"{NHS}|9990001634")
    who, reason = contact(lewis) or ("", "")
    assert who == "PractitionerRole/prr-gp-rajesh-patel"
    assert reason.endswith(", with no cover; accountable professional")
    assert gap_codes(lewis) == ["keyworker-unavailable-no-cover"]

    eileen = await accountable(client, "Patient/pat-eileen-brennan")
    assert contact(eileen) == (
        "PractitionerRole/prr-gp-rajesh-patel",
        "no key worker; accountable professional",
    )
    assert gap_codes(eileen) == ["no-keyworker"]

    gaps = await client.get("/$accountability-gaps", params={"_count": "100"})
    found = {
        (e["resource"]["patient"]["reference"], e["resource"]["code"]["coding"][0]["code"])
        for e in gaps.json()["entry"]
    }
    assert found == {
        ("Patient/pat-eileen-brennan", "no-keyworker"),
        ("Patient/pat-george-wilson", "plan-review-overdue"),
        ("Patient/pat-lewis-fraser", "keyworker-unavailable-no-cover"),
        ("Patient/pat-lewis-fraser", "plan-activity-no-performer"),
    }
