"""A small keyworking world for the HTTP tests: one GP practice, one social care team, their
people, and builders for CareTeams. Dates are fixed (2025 to 2027) so answers do not drift;
tests that need "now" say so with ``date``.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

ROLE = "https://keyworker-fhir.org/fhir/CodeSystem/keyworking-role"
SCT = "http://snomed.info/sct"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
NHS_NUMBER = "9990000018"  # valid: passes modulus 11
OTHER_NHS_NUMBER = "9990000026"

PEOPLE = {
    # role id: (practitioner id, name, organization id, phone)
    "r-gp": ("p-gp", "Dr Ann Gray", "org-gp", "0113 496 0001"),
    "r-gp2": ("p-gp2", "Dr Ben Holt", "org-gp", "0113 496 0002"),
    "r-kw": ("p-kw", "Kim Walsh", "org-sc", "0113 496 0003"),
    "r-kw2": ("p-kw2", "Lee Marsh", "org-sc", "0113 496 0004"),
    "r-cover": ("p-cover", "Cara Vine", "org-sc", "0113 496 0005"),
}


def role(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": ROLE, "code": code}]}]


def participant(
    code: str, member: str, start: str | None = "2025-01-01", end: str | None = None
) -> dict[str, Any]:
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    out: dict[str, Any] = {"role": role(code), "member": {"reference": member}}
    if period:
        out["period"] = period
    return out


def care_team(
    participants: list[dict[str, Any]], patient: str = "Patient/pat-1", **extra: Any
) -> dict[str, Any]:
    subject = (
        {"reference": patient}
        if "/" in patient and "|" not in patient
        else {"identifier": dict(zip(("system", "value"), patient.split("|"), strict=True))}
    )
    return {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": subject,
        "period": {"start": "2025-01-01"},
        "participant": participants,
        **extra,
    }


async def put(client: httpx.AsyncClient, body: dict[str, Any], rid: str) -> httpx.Response:
    return await client.put(f"/{body['resourceType']}/{rid}", json={**body, "id": rid})


async def ok(client: httpx.AsyncClient, body: dict[str, Any], rid: str) -> None:
    response = await put(client, body, rid)
    assert response.status_code in (200, 201), response.text


async def build(client: httpx.AsyncClient, leave: dict[str, dict[str, Any]] | None = None) -> None:
    """The organisations, practitioners, roles (with ``leave`` by role id) and pat-1."""
    for org, name in (("org-gp", "Gray Street Surgery"), ("org-sc", "Social Care North")):
        await ok(client, {"resourceType": "Organization", "name": name}, org)
    for rid, (pid, name, org, phone) in PEOPLE.items():
        given, family = name.removeprefix("Dr ").split(" ")
        await ok(
            client,
            {"resourceType": "Practitioner", "name": [{"family": family, "given": [given]}]},
            pid,
        )
        body: dict[str, Any] = {
            "resourceType": "PractitionerRole",
            "active": True,
            "practitioner": {"reference": f"Practitioner/{pid}", "display": name},
            "organization": {"reference": f"Organization/{org}"},
            "telecom": [{"system": "phone", "value": phone, "use": "work"}],
        }
        if leave and rid in leave:
            body["notAvailable"] = [{"description": "Annual leave", "during": leave[rid]}]
        await ok(client, body, rid)
    await ok(
        client,
        {
            "resourceType": "Patient",
            "identifier": [{"system": NHS, "value": NHS_NUMBER}],
            "name": [{"family": "Doe", "given": ["Jo"]}],
            "managingOrganization": {"reference": "Organization/org-gp"},
        },
        "pat-1",
    )


def parts(parameters: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Each top-level parameter ``name`` as {part name: value} (telecom as a list)."""
    found = []
    for p in parameters["parameter"]:
        if p["name"] != name:
            continue
        values: dict[str, Any] = {"telecom": []}
        for part in p.get("part", []):
            value = next(v for k, v in part.items() if k.startswith("value"))
            if part["name"] == "telecom":
                values["telecom"].append(value)
            else:
                values[part["name"]] = value
        found.append(values)
    return found


def gap_codes(parameters: dict[str, Any]) -> list[str]:
    return [p["valueCoding"]["code"] for p in parameters["parameter"] if p["name"] == "gap"]


async def accountable(client: httpx.AsyncClient, patient: str, date: str | None = None) -> Any:
    params = {"patient": patient, **({"date": date} if date else {})}
    response = await client.get("/CareTeam/$accountable", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def contact(parameters: dict[str, Any]) -> tuple[str, str] | None:
    found = parts(parameters, "contact")
    return (found[0]["member"]["reference"], found[0]["reason"]) if found else None


async def bundle_pages(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    """Every page, parsed strictly from the raw bytes (a truncated stream would not parse)."""
    found: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        response = await client.get(next_url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/fhir+json")
        page = orjson.loads(response.content)
        found.append(page)
        next_url = next((k["url"] for k in page["link"] if k["relation"] == "next"), None)
    return found
