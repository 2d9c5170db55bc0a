"""Browser apps and large answers: CORS for configured origins (off by default), and gzip for
answers over the threshold when asked, streamed answers still streamed."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from starlette.types import Message

from tests.conftest import BASE

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
APP = "https://app.example.org"
PREFLIGHT = {
    "Origin": APP,
    "Access-Control-Request-Method": "PUT",
    "Access-Control-Request-Headers": "authorization, content-type",
}
PLAIN = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}


def _patient(family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": ["A" * 40]}]}


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    preflight = await client.options("/Patient/p1", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in preflight.headers
    read = await client.get("/metadata", headers={"Origin": APP})
    assert "access-control-allow-origin" not in read.headers


async def test_cors_answers_configured_origins(app_factory: AppFactory) -> None:
    client = await app_factory(cors_origins=f"{APP}, https://other.example.org")
    preflight = await client.options("/Patient/p1", headers=PREFLIGHT)
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == APP
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    made = await client.post("/Patient", json=_patient("Okafor"), headers={"Origin": APP})
    assert made.status_code == 201
    assert made.headers["access-control-allow-origin"] == APP
    exposed = {h.strip().lower() for h in made.headers["access-control-expose-headers"].split(",")}
    assert exposed >= {"etag", "location", "last-modified", "content-location"}
    stranger = await client.options(
        "/Patient/p1", headers={**PREFLIGHT, "Origin": "https://evil.example.org"}
    )
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers


async def test_gzip_for_large_answers_when_asked(app_factory: AppFactory) -> None:
    client = await app_factory(gzip_min_bytes=2000)
    for i in range(20):
        assert (await client.post("/Patient", json=_patient(f"Family{i}"))).status_code == 201
    large = await client.get("/Patient", params={"_count": 20}, headers=GZIP)
    assert large.status_code == 200
    assert large.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in large.headers["vary"].lower()
    assert len(large.json()["entry"]) == 20  # httpx undoes the gzip
    assert int(large.headers["content-length"]) < len(large.content)
    plain = await client.get("/Patient", params={"_count": 20}, headers=PLAIN)
    assert "content-encoding" not in plain.headers
    assert plain.json()["entry"] == large.json()["entry"]
    one = large.json()["entry"][0]["resource"]["id"]
    small = await client.get(f"/Patient/{one}", headers=GZIP)
    assert small.status_code == 200
    assert "content-encoding" not in small.headers  # a read is under the threshold


async def test_a_streamed_answer_still_streams_gzipped(app_factory: AppFactory) -> None:
    client = await app_factory(gzip_min_bytes=10)
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    sent: list[Message] = []
    requested = False
    answered = asyncio.Event()

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()  # as a server does: the client is there until the answer ends
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
        "path": "/fhir/$accountability-gaps",
        "raw_path": b"/fhir/$accountability-gaps",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"accept-encoding", b"gzip")],
    }
    await transport.app(scope, receive, send)
    start, *bodies = sent
    assert start["status"] == 200
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert headers["content-encoding"] == "gzip"
    assert "content-length" not in headers
    assert len(bodies) > 1  # each chunk sent as it was made, not gathered into one
    assert all(b.get("more_body") for b in bodies[:-1])
    bundle = orjson.loads(gzip.decompress(b"".join(b["body"] for b in bodies)))
    assert bundle["resourceType"] == "Bundle"
    assert bundle["link"][0]["url"] == f"{BASE}/$accountability-gaps"
