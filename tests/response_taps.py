"""Every HTTP response body the suite receives, whichever client library received it, passed
to one callback.

Tests speak HTTP through httpx (the in-process ``client`` fixture, raw calls to live servers),
through fhirpy (aiohttp underneath) and through libraries built on requests. Each of those
has one method every response passes through once its body is read; wrapping that method is
the one seam that holds for a client built anywhere, by any test or helper, without each of
them opting in. Streamed responses (``stream=True``) are left alone: their body belongs to
the caller, unread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import requests


@dataclass(frozen=True)
class Received:
    """One response as the test received it, with the request that asked for it."""

    method: str
    url: str
    status: int
    content_type: str
    body: bytes


Seen = Callable[[Received], None]


def _httpx(seen: Seen) -> Callable[[], None]:
    sync_send = httpx.Client.send
    async_send = httpx.AsyncClient.send

    def received(response: httpx.Response) -> None:
        request = response.request
        seen(
            Received(
                request.method,
                str(request.url),
                response.status_code,
                response.headers.get("content-type", ""),
                response.content,
            )
        )

    def send(self: httpx.Client, request: httpx.Request, **options: Any) -> httpx.Response:
        response = sync_send(self, request, **options)
        if not options.get("stream"):
            received(response)
        return response

    async def asend(
        self: httpx.AsyncClient, request: httpx.Request, **options: Any
    ) -> httpx.Response:
        response = await async_send(self, request, **options)
        if not options.get("stream"):
            received(response)
        return response

    httpx.Client.send = send  # type: ignore[method-assign]
    httpx.AsyncClient.send = asend  # type: ignore[method-assign]

    def untap() -> None:
        httpx.Client.send = sync_send  # type: ignore[method-assign]
        httpx.AsyncClient.send = async_send  # type: ignore[method-assign]

    return untap


def _aiohttp(seen: Seen) -> Callable[[], None]:
    """aiohttp reads a body lazily and caches it: the first ``read`` is the one to see."""
    read = aiohttp.ClientResponse.read

    async def first_read(self: aiohttp.ClientResponse) -> bytes:
        first = self._body is None
        body = await read(self)
        if first:
            content_type = self.headers.get("Content-Type", "")
            seen(Received(self.method, str(self.url), self.status, content_type, body))
        return body

    aiohttp.ClientResponse.read = first_read  # type: ignore[method-assign]

    def untap() -> None:
        aiohttp.ClientResponse.read = read  # type: ignore[method-assign]

    return untap


def _requests(seen: Seen) -> Callable[[], None]:
    send = requests.Session.send

    def sent(self: requests.Session, request: requests.PreparedRequest, **options: Any) -> Any:
        response = send(self, request, **options)
        if not options.get("stream"):
            content_type = response.headers.get("Content-Type", "")
            seen(
                Received(
                    str(request.method),
                    str(request.url),
                    response.status_code,
                    content_type,
                    response.content,
                )
            )
        return response

    requests.Session.send = sent  # type: ignore[method-assign]

    def untap() -> None:
        requests.Session.send = send  # type: ignore[method-assign]

    return untap


def tap(seen: Seen) -> Callable[[], None]:
    """Pass every response body received from now on to ``seen``; returns the undo."""
    undo = [_httpx(seen), _aiohttp(seen), _requests(seen)]

    def untap() -> None:
        for step in undo:
            step()

    return untap
