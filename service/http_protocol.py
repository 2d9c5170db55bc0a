"""The HTTP protocol ``keyworker serve`` runs: uvicorn's httptools protocol, its responses
written through ``HeldWrites`` (``service.response_writes``), and its reads timed out.

uvicorn times out a connection idle between requests (``timeout_keep_alive``) but nothing
else: a connection opened and left silent, a request head sent a byte at a time, a body
that stops half-way were each held open for as long as the client liked, and a few
thousand of them hold a worker's connections, memory and file descriptors. Here:

* the head of a request (request line and headers) must be complete within
  ``head_timeout_s`` of its first byte, or of the connection opening;
* a body must not stall: no more than ``body_timeout_s`` may pass without a byte of it,
  unless the server itself is holding it back (reading paused while the application
  catches up, or an ``Expect: 100-continue`` not answered yet).

A request that runs out of time before anything was answered gets ``408`` (an
OperationOutcome, ``Connection: close``) and the connection is closed; a connection that
never sent a byte is closed silently, as an idle keep-alive connection is; one whose answer
is under way is closed once that answer has gone out (or at once, when the stalled body was
the request being answered, which can no longer be completed).
"""

from __future__ import annotations

import asyncio
import enum
from functools import partial
from typing import Any, cast

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from fhir_mappings.issues import Issue
from service.errors import operation_outcome
from service.response_writes import HeldWrites


class Reading(enum.Enum):
    NOTHING = "nothing"  # between requests
    HEAD = "head"
    BODY = "body"


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through ``HeldWrites``, its reads timed out."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        head_timeout_s: float,
        body_timeout_s: float,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_timeout_s = head_timeout_s
        self.body_timeout_s = body_timeout_s
        self.reading = Reading.NOTHING
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeldWrites(transport))
        self._time_reads(self.head_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timing_reads()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.reading is Reading.BODY:
            self._time_reads(self.body_timeout_s)  # measured from the latest bytes
        elif self.reading is Reading.HEAD:
            if self._read_timer is None:  # measured from the first byte
                self._time_reads(self.head_timeout_s)
        else:
            self._stop_timing_reads()

    def on_message_begin(self) -> None:
        self.reading = Reading.HEAD
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.reading = Reading.BODY
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.reading = Reading.NOTHING
        super().on_message_complete()

    def _time_reads(self, seconds: float) -> None:
        self._stop_timing_reads()
        self._read_timer = self.loop.call_later(seconds, self._out_of_time)

    def _stop_timing_reads(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _out_of_time(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        answering = cycle is not None and not cycle.response_complete
        if self.reading is Reading.NOTHING:
            self.transport.close()
        elif self.reading is Reading.HEAD and answering:
            cycle.keep_alive = False  # a pipelined head: close after the answer under way
        elif self.reading is Reading.HEAD:
            self._refuse(f"the request's head was not received within {self.head_timeout_s} s")
        elif self.flow.read_paused or cycle.waiting_for_100_continue:
            self._time_reads(self.body_timeout_s)  # the server is holding the body back
        elif cycle.response_started:
            self.transport.close()
        else:
            # the application waits for this body: it is told the client has gone
            cycle.disconnected = True
            cycle.message_event.set()
            self._refuse(f"the request's body stalled for {self.body_timeout_s} s")

    def _refuse(self, diagnostics: str) -> None:
        """Answer 408 and close, outside any ASGI cycle (none is answering this request)."""
        body = orjson.dumps(operation_outcome([Issue(diagnostics, "timeout")]))
        head = [STATUS_LINE[408]]
        for name, value in (
            *self.server_state.default_headers,
            (b"content-type", b"application/fhir+json; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
        ):
            head.extend((name, b": ", value, b"\r\n"))
        self.transport.write(b"".join((*head, b"\r\n", body)))
        self.transport.close()


def protocol(*, head_timeout_s: float, body_timeout_s: float) -> type[HttpProtocol]:
    """``HttpProtocol`` with its timeouts, for ``uvicorn.run(http=...)``: a partial, which
    uvicorn calls as it would the class and can hand to its worker processes (pickled)."""
    built = partial(HttpProtocol, head_timeout_s=head_timeout_s, body_timeout_s=body_timeout_s)
    return cast(type[HttpProtocol], built)
