"""The busiest requests are answered before the router (``service.routes.hot_paths``) with
the router's own handlers; the two ways in must answer alike.

Two apps share one database: one as served, one with the hot-path layer taken out, so
every request below goes through FastAPI's routing and dependencies. Each request is sent
to both and the answers compared: status, the headers a client acts on, and the body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from service.routes.hot_paths import HotPaths
from tests.authkit import bearer, mint, secure_client

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
FHIR = "application/fhir+json"
HEADERS = ("content-type", "etag", "last-modified", "www-authenticate")


def team(patient: str, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "status": status,
        "subject": {"reference": f"Patient/{patient}"},
    }


async def routed_only(app_factory: AppFactory) -> httpx.AsyncClient:
    client = await secure_client(app_factory)
    app = client._transport.app  # type: ignore[attr-defined]
    # Starlette builds the middleware stack on the first request; taking the layer out
    # after that would leave it in, and the test comparing the hot path with itself.
    assert app.middleware_stack is None
    app.user_middleware = [m for m in app.user_middleware if m.cls is not HotPaths]
    assert HotPaths not in {m.cls for m in app.user_middleware}
    return client


def comparable(response: httpx.Response) -> Any:
    """The body without what differs between two correct answers: ids and meta of fresh
    versions, and a searchset's own time stamp."""
    if not response.content:
        return b""
    body = orjson.loads(response.content)
    body.pop("meta", None)
    if response.request.method in ("POST", "PUT") and response.status_code < 300:
        body.pop("id", None)
    return body


async def test_hot_and_routed_answers_agree(app_factory: AppFactory, database_url: str) -> None:
    hot = await secure_client(app_factory)
    routed = await routed_only(app_factory)
    full = bearer(await mint(database_url, "system/*.cruds"))
    reader = bearer(await mint(database_url, "system/*.rs"))
    own = bearer(await mint(database_url, "patient/*.rs", patient="p1"))
    for pid in ("p1", "p2"):
        seeded = await hot.put(
            f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid}, headers=full
        )
        assert seeded.status_code == 201, seeded.text
        seeded = await hot.put(
            f"/CareTeam/ct-{pid}", json={**team(pid), "id": f"ct-{pid}"}, headers=full
        )
        assert seeded.status_code == 201, seeded.text

    cases: list[tuple[str, str, dict[str, str], Any]] = [
        ("GET", "/CareTeam/ct-p1", full, None),
        ("GET", "/CareTeam/ct-p1?_pretty=true", full, None),
        ("GET", "/CareTeam/missing", full, None),
        ("GET", "/CareTeam/ct-p1", {}, None),
        ("GET", "/CareTeam/ct-p2", own, None),
        ("GET", "/CareTeam/ct-p1", {**full, "Accept": "application/fhir+xml"}, None),
        ("GET", "/CareTeam?subject=Patient/p1&_include=CareTeam:subject", full, None),
        ("GET", "/CareTeam?status=active&_count=1&_sort=_id", full, None),
        ("GET", "/CareTeam?unknown-parameter=1", full, None),
        ("GET", "/CareTeam", own, None),
        ("GET", "/CareTeam?_count=oops", full, None),
        ("POST", "/CareTeam", reader, team("p1")),
        ("POST", "/CareTeam", full, b"{not json"),
        ("POST", "/CareTeam", full, {"resourceType": "Patient"}),
        ("POST", "/CareTeam", full, team("p1")),
        ("POST", "/CareTeam", {**full, "Accept": "application/fhir+xml"}, team("p1")),
        ("PUT", "/CareTeam/ct-p1", {**full, "If-Match": 'W/"99"'}, team("p1")),
        ("PUT", "/CareTeam/ct-p1", full, team("nobody")),
        ("PUT", "/CareTeam/ct-p1", reader, team("p1")),
    ]
    for method, url, headers, body in cases:
        content = body if isinstance(body, bytes) else orjson.dumps(body) if body else None
        sent = {**headers, "Content-Type": FHIR} if content else headers
        answers = [
            await client.request(method, url, headers=sent, content=content)
            for client in (hot, routed)
        ]
        first, second = answers
        where = f"{method} {url}"
        assert first.status_code == second.status_code, (where, first.text, second.text)
        assert comparable(first) == comparable(second), where
        for header in HEADERS:
            if header != "last-modified" or method == "GET":
                assert first.headers.get(header) == second.headers.get(header), (where, header)
        assert ("location" in first.headers) == ("location" in second.headers), where

    # Two seeded, one created through each way in; the 406 came before any write.
    counted = await hot.get("/CareTeam?_summary=count", headers=full)
    assert counted.json()["total"] == 4

    # An update through each: one version after the other, both answered 200 alike.
    versions = []
    for client, status in ((hot, "inactive"), (routed, "suspended")):
        updated = await client.put(
            "/CareTeam/ct-p2", json={**team("p2", status), "id": "ct-p2"}, headers=full
        )
        assert updated.status_code == 200, updated.text
        versions.append(int(updated.json()["meta"]["versionId"]))
    assert versions[1] == versions[0] + 1
