"""An unhandled error ends its request, answered, and leaves the connection usable.

Starlette's outermost middleware answers an unhandled exception with the app's 500 handler
(an OperationOutcome, the error logged) and then raises it again, for the server to log. The
server cannot tell an error after a complete answer from one in the middle of it, so uvicorn
closes the connection either way, without saying so: a client's pooled keep-alive
connection is reset under its next, unrelated request. ``AnsweredErrors``, around the whole
application, lets an error end with its answer: once the answer is complete (the 500, or
any other) nothing is left for the server to do with the error. An error before the answer
is complete (a stream broken half-way) still reaches the server, which must then close the
connection: that is the only way left to tell the client its answer is cut short.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AnsweredErrors:
    """Swallows an exception raised after its request's answer was completely sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answered = False

        async def watch(message: Message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if not answered:
                raise
