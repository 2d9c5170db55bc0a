"""What a real ``keyworker serve`` does with a connection when a request fails or stalls.

Spoken to over raw sockets, one connection at a time, so that what the server does to the
connection itself shows: a request that fails with a 500 is answered whole and the
connection stays usable; a request whose head or body stops coming is answered 408 and its
connection closed, within the configured time (one second here).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests import test_end_to_end
from tests.faults import resources_table_missing
from tests.servers import environment, keyworker_ok, serving

pytestmark = pytest.mark.e2e

database = test_end_to_end.database
TIMEOUT_S = 1.0
PATIENT = b'{"resourceType":"Patient","id":"p1"}'


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    database: str
    log: Path


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = environment(database)
    env["KEYWORKER_REQUEST_HEAD_TIMEOUT_S"] = str(TIMEOUT_S)
    env["KEYWORKER_REQUEST_BODY_TIMEOUT_S"] = str(TIMEOUT_S)
    keyworker_ok(env, "db", "upgrade")
    with serving(env, tmp_path_factory.mktemp("faults-logs"), "--insecure-no-auth") as running:
        root, log = running
        host, port = root.removeprefix("http://").split(":")
        yield Server(host, int(port), database, log)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Connection:
    """One TCP connection, requests written and answers read by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: Server) -> Connection:
        return cls(*await asyncio.open_connection(server.host, server.port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(self, method: str, path: str, body: bytes = b"") -> Answer:
        head = f"{method} {path} HTTP/1.1\r\nHost: test\r\n"
        if body:
            head += f"Content-Type: application/fhir+json\r\nContent-Length: {len(body)}\r\n"
        await self.send(head.encode() + b"\r\n" + body)
        return await self.answer()

    async def answer(self) -> Answer:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        body = await asyncio.wait_for(self.reader.readexactly(length), 10)
        return Answer(int(status_line.split()[1]), headers, body)

    async def closed_within(self, seconds: float) -> bytes:
        """Everything the server sends until it closes the connection; fails past ``seconds``."""
        return await asyncio.wait_for(self.reader.read(), seconds)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
async def connection(server: Server) -> AsyncIterator[Connection]:
    opened = await Connection.open(server)
    yield opened
    await opened.close()


async def test_a_500_is_answered_whole_and_the_connection_stays_usable(
    server: Server, connection: Connection
) -> None:
    put = await connection.request("PUT", "/fhir/Patient/p1", PATIENT)
    assert put.status in (200, 201), put.body
    async with resources_table_missing(server.database):
        # a write answered before FastAPI, then a read answered by its routers
        for method, path, body in (
            ("POST", "/fhir/Patient", PATIENT),
            ("GET", "/fhir/Patient/p1/_history", b""),
        ):
            failed = await connection.request(method, path, body)
            assert failed.status == 500, failed.body
            assert failed.headers["content-type"].startswith("application/fhir+json")
            assert "close" not in failed.headers.get("connection", "")
            outcome = failed.json()
            assert outcome["resourceType"] == "OperationOutcome"
            assert outcome["issue"][0]["code"] == "exception"
    created = await connection.request("POST", "/fhir/Patient", PATIENT)
    assert created.status == 201, created.body
    read = await connection.request("GET", "/fhir/Patient/p1")
    assert read.status == 200, read.body
    assert read.json()["id"] == "p1"


def _timed_out(answer: Answer, what: str) -> None:
    assert answer.status == 408, answer.body
    assert answer.headers["connection"] == "close"
    issue = answer.json()["issue"][0]
    assert issue["code"] == "timeout"
    assert what in issue["diagnostics"]


async def test_a_head_not_finished_in_time_is_answered_408_and_closed(
    connection: Connection,
) -> None:
    for _ in range(2):  # heads completed in time, each timed from its own first byte
        await connection.send(b"GET /fhir/Patient/p1 HTTP/1.1\r\nHost: test\r\n")
        await asyncio.sleep(TIMEOUT_S * 0.6)
        await connection.send(b"\r\n")
        assert (await connection.answer()).status in (200, 404)
    started = time.monotonic()
    # a byte every 0.2 s: progress, but the head would take far longer than its time
    for byte in b"GET /fhir/Patient/p1 HTT":
        if time.monotonic() - started > TIMEOUT_S * 0.7:
            break
        await connection.send(bytes([byte]))
        await asyncio.sleep(0.2)
    _timed_out(await connection.answer(), "head")
    assert TIMEOUT_S - 0.1 < time.monotonic() - started < TIMEOUT_S + 1.5
    assert await connection.closed_within(1.0) == b""


async def test_a_body_that_stalls_is_answered_408_and_closed(connection: Connection) -> None:
    await connection.send(
        b"POST /fhir/Patient HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: application/fhir+json\r\nContent-Length: 200\r\n\r\n" + PATIENT[:10]
    )
    stalled = time.monotonic()
    _timed_out(await connection.answer(), "body")
    assert TIMEOUT_S - 0.1 < time.monotonic() - stalled < TIMEOUT_S + 1.5
    assert await connection.closed_within(1.0) == b""


async def test_a_connection_that_sends_nothing_is_closed(connection: Connection) -> None:
    opened = time.monotonic()
    assert await connection.closed_within(TIMEOUT_S + 1.5) == b""
    assert time.monotonic() - opened > TIMEOUT_S - 0.1


async def test_a_client_gone_mid_body_is_no_internal_error(
    server: Server, connection: Connection
) -> None:
    """The body was cut short by the client, not by a fault of the server's: nothing to log
    as an unhandled error (nor to audit as a 500)."""
    logged_before = len(server.log.read_bytes())
    await connection.send(
        b"POST /fhir/Patient HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: application/fhir+json\r\nContent-Length: 200\r\n\r\n" + PATIENT[:10]
    )
    await asyncio.sleep(0.2)
    await connection.close()
    await asyncio.sleep(0.3)
    probe = await Connection.open(server)
    try:
        assert (await probe.request("GET", "/fhir/Patient/p1")).status in (200, 404)
    finally:
        await probe.close()
    log = server.log.read_bytes()[logged_before:].decode(errors="replace")
    assert "unhandled error" not in log and "ClientDisconnect" not in log, log[-2000:]
