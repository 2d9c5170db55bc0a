"""Opaque, tamper-evident page cursors for keyset paging.

A cursor carries the keyset position (and direction) of the next or previous page, signed
with a server secret shared through the database, so any service process can continue a
page another one started and a client cannot forge positions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from service.errors import BadRequest

_SIGNATURE_BYTES = 16


class Cursors:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def encode(self, position: dict[str, Any]) -> str:
        payload = orjson.dumps(position)
        return base64.urlsafe_b64encode(self._sign(payload) + payload).decode().rstrip("=")

    def decode(self, token: str) -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError as error:
            raise BadRequest("The page cursor is not valid", code="value") from error
        signature, payload = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise BadRequest("The page cursor is not valid", code="value")
        position: dict[str, Any] = orjson.loads(payload)
        return position
