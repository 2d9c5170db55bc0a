"""``CareTeam/$accountable`` and ``$handover`` over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime

import httpx

from tests.keyworking_world import (
    NHS,
    NHS_NUMBER,
    OTHER_NHS_NUMBER,
    SCT,
    accountable,
    build,
    care_team,
    contact,
    gap_codes,
    ok,
    participant,
    parts,
    put,
)

TODAY = datetime.date.today()


def _days(n: int) -> str:
    return (TODAY + datetime.timedelta(days=n)).isoformat()


async def test_one_to_one_answers_with_every_part(client: httpx.AsyncClient) -> None:
    await build(client)
    await ok(
        client,
        care_team(
            [
                participant("accountable-professional", "PractitionerRole/r-gp"),
                participant("keyworker", "PractitionerRole/r-kw"),
            ]
        ),
        "ct-1",
    )
    answer = await accountable(client, "Patient/pat-1", "2026-03-01")
    assert answer["resourceType"] == "Parameters"
    assert answer["parameter"][0] == {
        "name": "patient",
        "valueReference": {"reference": "Patient/pat-1", "display": "Jo Doe"},
    }
    (gp,) = parts(answer, "accountable")
    assert gp["member"] == {"reference": "PractitionerRole/r-gp", "display": "Dr Ann Gray"}
    assert gp["role"]["coding"][0]["code"] == "accountable-professional"
    assert gp["careTeam"] == {"reference": "CareTeam/ct-1"}
    assert gp["period"] == {"start": "2025-01-01"}
    assert gp["organization"]["reference"] == "Organization/org-gp"
    assert gp["telecom"] == [{"system": "phone", "value": "0113 496 0001", "use": "work"}]
    (kw,) = parts(answer, "keyworker")
    assert kw["organization"] == {"reference": "Organization/org-sc"}
    assert contact(answer) == ("PractitionerRole/r-kw", "key worker")
    assert gap_codes(answer) == []
    # Patient by bare id and by NHS number give the same answer.
    assert await accountable(client, "pat-1", "2026-03-01") == answer
    assert await accountable(client, f"{NHS}|{NHS_NUMBER}", "2026-03-01") == answer


async def test_unknown_patient_is_404_and_patient_is_required(client: httpx.AsyncClient) -> None:
    await build(client)
    for patient in ("Patient/nobody", "nobody", f"{NHS}|{OTHER_NHS_NUMBER}"):
        response = await client.get("/CareTeam/$accountable", params={"patient": patient})
        assert response.status_code == 404
        assert response.json()["resourceType"] == "OperationOutcome"
    assert (await client.get("/CareTeam/$accountable")).status_code == 400
    bad_date = {"patient": "pat-1", "date": "yesterday"}
    assert (await client.get("/CareTeam/$accountable", params=bad_date)).status_code == 400


async def test_no_accountable_professional_is_a_gap_and_nobody_to_contact(
    client: httpx.AsyncClient,
) -> None:
    await build(client)
    await ok(client, care_team([participant("case-team-member", "PractitionerRole/r-kw")]), "ct")
    answer = await accountable(client, "pat-1", "2026-03-01")
    assert parts(answer, "accountable") == []
    assert contact(answer) is None
    assert gap_codes(answer) == ["no-accountable-professional", "no-keyworker"]


async def test_patient_known_only_by_nhs_number(client: httpx.AsyncClient) -> None:
    """Another system names the person only by identifier; no Patient resource exists."""
    await build(client)
    subject = f"{NHS}|{OTHER_NHS_NUMBER}"
    await ok(
        client,
        care_team([participant("accountable-professional", "PractitionerRole/r-gp2")], subject),
        "ct-id",
    )
    answer = await accountable(client, subject, "2026-03-01")
    assert answer["parameter"][0]["valueReference"] == {
        "identifier": {"system": NHS, "value": OTHER_NHS_NUMBER}
    }
    assert parts(answer, "accountable")[0]["member"]["reference"] == "PractitionerRole/r-gp2"
    assert contact(answer) == (
        "PractitionerRole/r-gp2",
        "no key worker; accountable professional",
    )


async def test_leave_with_cover_passes_to_the_cover(client: httpx.AsyncClient) -> None:
    await build(client, leave={"r-kw": {"start": _days(-10), "end": _days(30)}})
    await ok(
        client,
        care_team(
            [
                participant("accountable-professional", "PractitionerRole/r-gp"),
                participant("keyworker", "PractitionerRole/r-kw"),
                participant("cover-keyworker", "PractitionerRole/r-cover", _days(-10), _days(30)),
            ]
        ),
        "ct",
    )
    answer = await accountable(client, "pat-1")
    assert contact(answer) == (
        "PractitionerRole/r-cover",
        f"key worker Kim Walsh Annual leave until {_days(30)}; cover key worker",
    )
    assert parts(answer, "keyworker")[0]["absence"] == f"Annual leave until {_days(30)}"
    assert gap_codes(answer) == []
    # After the leave, the key worker is the contact again.
    after = await accountable(client, "pat-1", _days(31))
    assert contact(after) == ("PractitionerRole/r-kw", "key worker")


async def test_leave_without_cover_passes_to_the_accountable_professional(
    client: httpx.AsyncClient,
) -> None:
    await build(client, leave={"r-kw": {"start": _days(-10), "end": _days(30)}})
    await ok(
        client,
        care_team(
            [
                participant("accountable-professional", "PractitionerRole/r-gp"),
                participant("keyworker", "PractitionerRole/r-kw"),
            ]
        ),
        "ct",
    )
    answer = await accountable(client, "pat-1")
    assert contact(answer) == (
        "PractitionerRole/r-gp",
        f"key worker Kim Walsh Annual leave until {_days(30)}, with no cover; "
        "accountable professional",
    )
    assert gap_codes(answer) == ["keyworker-unavailable-no-cover"]


async def test_inactive_role_and_practitioner_member_resolve_through_roles(
    client: httpx.AsyncClient,
) -> None:
    await build(client)
    role = (await client.get("/PractitionerRole/r-kw")).json()
    await ok(client, {**role, "active": False}, "r-kw")
    await ok(
        client,
        care_team(
            [
                participant("accountable-professional", "Practitioner/p-gp"),
                participant("keyworker", "PractitionerRole/r-kw"),
            ]
        ),
        "ct",
    )
    answer = await accountable(client, "pat-1", "2026-03-01")
    gp = parts(answer, "accountable")[0]
    assert gp["member"] == {"reference": "Practitioner/p-gp", "display": "Dr Ann Gray"}
    assert gp["telecom"][0]["value"] == "0113 496 0001"  # from the practitioner's role
    assert contact(answer) == (
        "Practitioner/p-gp",
        "key worker Kim Walsh role inactive, with no return date, with no cover; "
        "accountable professional",
    )


async def test_snomed_only_care_team_from_another_system(client: httpx.AsyncClient) -> None:
    """End to end: roles coded only in SNOMED CT are still understood."""
    await build(client)
    team = care_team(
        [
            {
                "role": [{"coding": [{"system": SCT, "code": "62247001"}]}],
                "member": {"reference": "PractitionerRole/r-gp"},
            },
            {
                "role": [{"coding": [{"system": SCT, "code": "768820003"}]}],
                "member": {"reference": "PractitionerRole/r-kw"},
            },
        ]
    )
    await ok(client, team, "ct-other-system")
    answer = await accountable(client, f"{NHS}|{NHS_NUMBER}", "2026-03-01")
    (kw,) = parts(answer, "keyworker")
    assert kw["member"]["reference"] == "PractitionerRole/r-kw"
    codings = [(c["system"], c["code"]) for c in kw["role"]["coding"]]
    assert codings[0][1] == "keyworker" and (SCT, "768820003") in codings
    assert contact(answer) == ("PractitionerRole/r-kw", "key worker")
    # The GP's profession code is kept and shown, but carries no duty.
    assert gap_codes(answer) == ["no-accountable-professional"]


async def test_handover_before_during_and_after(client: httpx.AsyncClient) -> None:
    await build(client)
    await ok(
        client,
        care_team(
            [
                participant("accountable-professional", "PractitionerRole/r-gp"),
                participant("keyworker", "PractitionerRole/r-kw"),
            ]
        ),
        "ct",
    )
    handover = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "role", "valueCode": "keyworker"},
            {"name": "from", "valueReference": {"reference": "PractitionerRole/r-kw"}},
            {"name": "to", "valueReference": {"reference": "PractitionerRole/r-kw2"}},
            {"name": "date", "valueDate": "2026-06-01"},
            {"name": "reason", "valueString": "Yearly rotation"},
        ],
    }
    response = await client.post("/CareTeam/ct/$handover", json=handover)
    assert response.status_code == 200, response.text
    team = response.json()
    assert team["meta"]["versionId"] == "2"
    assert team["participant"][1]["period"] == {"start": "2025-01-01", "end": "2026-05-31"}
    assert team["participant"][2]["member"] == {"reference": "PractitionerRole/r-kw2"}
    assert team["participant"][2]["period"] == {"start": "2026-06-01"}
    provenance = await client.get("/Provenance", params={"target": "CareTeam/ct"})
    reasons = [e["resource"].get("reason") for e in provenance.json().get("entry", [])]
    assert [{"text": "Yearly rotation"}] in reasons
    before = await accountable(client, "pat-1", "2026-05-31T23:00:00Z")
    assert contact(before) == ("PractitionerRole/r-kw", "key worker")
    on_the_day = await accountable(client, "pat-1", "2026-06-01")
    assert contact(on_the_day) == ("PractitionerRole/r-kw2", "key worker")
    later = await accountable(client, "pat-1", "2027-01-01")
    assert [k["member"]["reference"] for k in parts(later, "keyworker")] == [
        "PractitionerRole/r-kw2"
    ]
    # The old holder no longer holds the role then: 409, and nothing changes.
    again = await client.post("/CareTeam/ct/$handover", json=handover)
    assert again.status_code == 409
    assert (await client.get("/CareTeam/ct")).json()["meta"]["versionId"] == "2"


async def test_handover_refusals(client: httpx.AsyncClient) -> None:
    await build(client)
    await ok(client, care_team([participant("keyworker", "PractitionerRole/r-kw")]), "ct")

    def body(**values: str) -> dict[str, object]:
        params = {"role": "keyworker", "from": "PractitionerRole/r-kw", "date": "2026-06-01"}
        params |= {"to": "PractitionerRole/r-kw2"} | values
        return {
            "resourceType": "Parameters",
            "parameter": [
                {"name": k, "valueReference": {"reference": v}}
                if k in ("from", "to")
                else {"name": k, "valueString": v}
                for k, v in params.items()
            ],
        }

    unknown_to = await client.post("/CareTeam/ct/$handover", json=body(to="PractitionerRole/x"))
    assert unknown_to.status_code == 422
    wrong_role = await client.post("/CareTeam/ct/$handover", json=body(role="cover-keyworker"))
    assert wrong_role.status_code == 409
    too_early = await client.post("/CareTeam/ct/$handover", json=body(date="2024-06-01"))
    assert too_early.status_code == 409
    assert (
        await client.post("/CareTeam/ct/$handover", json={"resourceType": "Parameters"})
    ).status_code == 400
    assert (await client.post("/CareTeam/none/$handover", json=body())).status_code == 404
    assert (await client.get("/CareTeam/ct")).json()["meta"]["versionId"] == "1"


async def test_handover_to_a_clashing_accountable_is_refused_whole(
    client: httpx.AsyncClient,
) -> None:
    await build(client)
    await ok(
        client, care_team([participant("accountable-professional", "PractitionerRole/r-gp")]), "a"
    )
    await ok(
        client,
        care_team(
            [
                participant(
                    "accountable-professional", "PractitionerRole/r-gp2", "2020-01-01", "2024-12-31"
                )
            ],
            period={"start": "2020-01-01"},
        ),
        "b",
    )
    response = await put(
        client,
        care_team(
            [participant("accountable-professional", "PractitionerRole/r-gp2", "2020-01-01")],
            period={"start": "2020-01-01"},
        ),
        "b",
    )
    assert response.status_code == 422
    assert "single-accountable" in response.json()["issue"][0]["diagnostics"]
