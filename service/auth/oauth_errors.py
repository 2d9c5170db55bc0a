"""The built-in authorization server's error answers (RFC 6749 section 5.2).

``invalid_request`` (400) is a request the server cannot read: a parameter missing, repeated
or with a value it does not know, or more than one way of authenticating the client;
``invalid_client`` (401) is a client that did not prove who it is; ``unsupported_grant_type``
and ``invalid_scope`` (400) are what their names say.
"""

from __future__ import annotations


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error response."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_request(description: str) -> OAuthError:
    return OAuthError(400, "invalid_request", description)


def invalid_client(description: str) -> OAuthError:
    return OAuthError(401, "invalid_client", description)
