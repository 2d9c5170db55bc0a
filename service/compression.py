"""gzip for answers over a size threshold, when the client sends ``Accept-Encoding: gzip``.

Starlette's ``GZipMiddleware`` wraps every request's ``send``, gzip asked for or not; here a
request that does not ask goes straight through, and one that does gets Starlette's gzip
responder, which leaves an answer under the threshold as it is (a read: compressing a few
hundred bytes costs more than sending them) and compresses a streamed answer (the
``$accountability-gaps`` Bundle) chunk by chunk, each flushed, so it still streams.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipResponder
from starlette.types import ASGIApp, Receive, Scope, Send

# zlib's default level: nearly the size of level 9 at a fraction of its CPU.
_LEVEL = 6


def _asks_gzip(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return b"gzip" in value
    return False


class Compression:
    def __init__(self, app: ASGIApp, *, minimum_bytes: int) -> None:
        self.app = app
        self.minimum_bytes = minimum_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _asks_gzip(scope):
            await self.app(scope, receive, send)
            return
        responder = GZipResponder(self.app, self.minimum_bytes, compresslevel=_LEVEL)
        await responder(scope, receive, send)
