"""``HEAD`` answered as ``GET`` without its body (RFC 9110 9.3.2), in one place for every
path: the hot paths and the routers see a GET, and the client gets the GET's status and
headers (``Content-Length``, ``ETag``, ``Last-Modified``) and no body.

It sits inside the audit, which records the HEAD as sent, and so inside the compression
too: a HEAD's ``Content-Length`` is that of the uncompressed answer.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b""})

        # A copy: the audit, outside, still sees the HEAD it was sent.
        await self.app({**scope, "method": "GET"}, receive, headers_only)
