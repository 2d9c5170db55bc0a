"""Each response leaves in one write: uvicorn's protocol as ``keyworker serve`` runs it, driven
over a transport that records what reaches the socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from service import cli
from service.http_protocol import HttpProtocol
from service.response_writes import HeldWrites


class Socket(asyncio.Transport):
    """What would reach the socket: one entry per system call the loop would make."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.sent.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.sent.append(b"".join(bytes(d) for d in list_of_data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    body = b'{"resourceType":"Patient","id":"p1"}'
    headers = [(b"content-type", b"application/fhir+json"), (b"content-length", b"36")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def streamed(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"one,", b"two,", b"three"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
        await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": b""})


async def served(app: Any, request: bytes) -> Socket:
    """The protocol ``keyworker serve`` uses, handed ``request``; the socket once it is done."""
    config = uvicorn.Config(app=app, http=HttpProtocol, log_config=None, lifespan="off")
    config.load()
    protocol = HttpProtocol(
        config=config,
        server_state=ServerState(),
        app_state={},
        head_timeout_s=10.0,
        body_timeout_s=30.0,
    )
    socket = Socket()
    protocol.connection_made(socket)
    protocol.data_received(request)
    for _ in range(50):
        await asyncio.sleep(0)
    return socket


async def test_head_and_body_leave_in_one_write() -> None:
    socket = await served(hello, b"GET /fhir/Patient/p1 HTTP/1.1\r\nHost: test\r\n\r\n")
    assert len(socket.sent) == 1, socket.sent
    head, _, body = socket.sent[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == b'{"resourceType":"Patient","id":"p1"}'


async def test_pipelined_answers_keep_their_order() -> None:
    two = b"GET /a HTTP/1.1\r\nHost: test\r\n\r\nGET /b HTTP/1.1\r\nHost: test\r\n\r\n"
    socket = await served(hello, two)
    assert len(socket.sent) == 2, socket.sent
    assert all(s.startswith(b"HTTP/1.1 200 OK\r\n") for s in socket.sent)
    assert all(s.endswith(b'"id":"p1"}') for s in socket.sent)


async def test_an_answer_to_head_is_not_held_back() -> None:
    socket = await served(hello, b"HEAD /fhir/Patient/p1 HTTP/1.1\r\nHost: test\r\n\r\n")
    assert len(socket.sent) == 1
    assert socket.sent[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert socket.sent[0].endswith(b"\r\n\r\n")


async def test_a_stream_arrives_whole_and_in_order() -> None:
    socket = await served(streamed, b"GET /gaps HTTP/1.1\r\nHost: test\r\n\r\n")
    _, _, body = b"".join(socket.sent).partition(b"\r\n\r\n")
    assert body == b"4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n"
    assert len(socket.sent) < 5  # head and chunks paired where they came together


async def test_a_lone_write_goes_out_when_the_loop_turns() -> None:
    socket = Socket()
    held = HeldWrites(socket)
    held.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert socket.sent == []
    await asyncio.sleep(0)
    assert socket.sent == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    assert held.get_write_buffer_size() == 0


async def test_closing_sends_what_is_held_first_and_abort_drops_it() -> None:
    socket = Socket()
    held = HeldWrites(socket)
    held.write(b"last words")
    held.close()
    assert socket.sent == [b"last words"] and socket.closed
    await asyncio.sleep(0)
    assert socket.sent == [b"last words"]  # not sent twice

    dropped = Socket()
    held = HeldWrites(dropped)
    held.write(b"never")
    held.abort()
    await asyncio.sleep(0)
    assert dropped.sent == [] and dropped.aborted


def test_serve_runs_uvicorn_with_this_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    options: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: options.update(kwargs, app=app))
    monkeypatch.setenv("KEYWORKER_PORT", "8080")
    assert cli.main(["serve", "--port", "8123"]) == 0
    assert options["app"] == "service.asgi:app_factory"
    assert options["http"].func is HttpProtocol
    assert options["http"].keywords == {"head_timeout_s": 10.0, "body_timeout_s": 30.0}
