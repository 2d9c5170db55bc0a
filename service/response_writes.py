"""One write per response: a transport for uvicorn's HTTP protocol that holds a response's head
for its body.

uvicorn writes a response's status line and headers, then its body, each straight to the
socket: two system calls and two TCP segments for every answer, and a client that wakes for
the head and again for the body. On the busiest requests (a read by id, ``$accountable``)
that second write cost 3-8% of the machine's CPU a request (one worker, wrk -c16, reads:
462/417/392/396 against 397/384/384/380 us alternating, /tmp A/B), the client's share and
the kernel's loopback work included.

``HeldWrites``, the transport the service's protocol (``service.http_protocol``) writes
through, holds each write until the next one and sends the two together with
``writelines``, which the event loop turns into one ``writev``. A write nothing follows
before the running code gives the event loop back (the head of an answer to HEAD, an
``100 Continue``, the last chunk of a stream) goes out as soon as it does, so nothing waits
for more than the code already running. Order is kept: held bytes always go first, and
closing sends them before closing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

Data = bytes | bytearray | memoryview


class HeldWrites(asyncio.Transport):
    """A transport that pairs each write with the next one (see the module docstring)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._held: Data | None = None
        self._loop = asyncio.get_running_loop()

    def write(self, data: Data) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._loop.call_soon(self._release)
            return
        self._held = None
        self._transport.writelines((held, data))

    def writelines(self, list_of_data: Iterable[Data]) -> None:
        self._release()
        self._transport.writelines(list_of_data)

    def _release(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._release()
        self._transport.close()

    def write_eof(self) -> None:
        self._release()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        held = len(self._held) if self._held is not None else 0
        return held + self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()
