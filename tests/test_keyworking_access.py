"""The keyworking operations declare the access they need (``OPERATIONS[...].requires``).

A ``patient/`` token may ask ``$accountable`` about its own patient only (anyone else is 404,
as unknown as nobody); the team-wide
reports need unrestricted search; ``$handover`` needs update; no token is 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.authkit import bearer, mint, secure_client
from tests.keyworking_world import build, care_team, ok, participant

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
HANDOVER = {
    "resourceType": "Parameters",
    "parameter": [
        {"name": "role", "valueCode": "keyworker"},
        {"name": "from", "valueReference": {"reference": "PractitionerRole/r-kw"}},
        {"name": "to", "valueReference": {"reference": "PractitionerRole/r-kw2"}},
        {"name": "date", "valueDate": "2026-06-01"},
    ],
}


async def test_operations_need_the_access_they_declare(
    app_factory: AppFactory, database_url: str
) -> None:
    client = await secure_client(app_factory)
    client.headers.update(bearer(await mint(database_url, "system/*.cruds")))
    await build(client)
    await ok(client, {"resourceType": "Patient", "active": True}, "pat-2")
    for patient in ("pat-1", "pat-2"):
        team = care_team([participant("keyworker", "PractitionerRole/r-kw")], f"Patient/{patient}")
        await ok(client, team, f"ct-{patient}")

    async def status(method: str, url: str, scope: str | None, **kw: Any) -> int:
        headers = {"Authorization": ""}
        if scope is not None:
            headers = bearer(await mint(database_url, scope, patient="pat-1"))
        response = await client.request(method, url, headers=headers, **kw)
        return response.status_code

    own = "/CareTeam/$accountable?patient=Patient/pat-1"
    other = "/CareTeam/$accountable?patient=Patient/pat-2"
    assert await status("GET", own, "patient/*.rs") == 200
    # Another patient is as unknown as nobody: no oracle of who exists.
    assert await status("GET", other, "patient/*.rs") == 404
    assert await status("GET", "/CareTeam/$accountable?patient=nobody", "patient/*.rs") == 404
    assert await status("GET", own, None) == 401
    assert await status("GET", own, "system/Patient.rs") == 403
    assert await status("GET", "/$accountability-gaps", "patient/*.rs") == 403
    assert await status("GET", "/$accountability-gaps", "system/CareTeam.rs") == 403
    assert await status("GET", "/$accountability-gaps", "system/*.rs") == 200
    assert await status("GET", "/Organization/org-sc/$caseload", "system/*.rs") == 200
    assert await status("GET", "/Organization/org-sc/$caseload", "patient/*.rs") == 403
    url = "/CareTeam/ct-pat-1/$handover"
    assert await status("POST", url, "system/*.rs", json=HANDOVER) == 403
    assert await status("POST", url, "system/CareTeam.ru", json=HANDOVER) == 200
