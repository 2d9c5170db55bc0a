"""Clients registered with the built-in authorization server, and their credentials.

A client authenticates either with a signed JWT assertion (SMART Backend Services'
``private_key_jwt``; its public keys registered as a JWKS or a JWKS URL) or with a secret
(``client_secret_basic`` or ``client_secret_post``). Secrets are generated here, shown once,
and stored only as a salted scrypt hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from service.db.engine import Database
from service.db.tables import oauth_client

# scrypt cost: 2**14 x 8 x 1 is ~16 MiB and a few tens of milliseconds per check.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    encode = base64.urlsafe_b64encode
    return f"scrypt${encode(salt).decode()}${encode(digest).decode()}"


def secret_matches(secret: str, stored: str) -> bool:
    scheme, _, rest = stored.partition("$")
    salt, _, digest = rest.partition("$")
    if scheme != "scrypt":
        return False
    actual = hashlib.scrypt(
        secret.encode(), salt=base64.urlsafe_b64decode(salt), dklen=32, **_SCRYPT
    )
    return hmac.compare_digest(actual, base64.urlsafe_b64decode(digest))


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    scopes: str
    secret_hash: str | None
    jwks: dict[str, Any] | None
    jwks_url: str | None
    revoked: bool


def _client(row: Any) -> Client:
    return Client(
        row.client_id,
        row.name,
        row.scopes,
        row.secret_hash,
        json.loads(bytes(row.jwks)) if row.jwks is not None else None,
        row.jwks_url,
        bool(row.revoked),
    )


async def register(
    database: Database,
    *,
    name: str,
    scopes: str,
    now_us: int,
    with_secret: bool = False,
    jwks: dict[str, Any] | None = None,
    jwks_url: str | None = None,
) -> tuple[str, str | None]:
    """A new client's id and, for a secret client, its secret (shown this once)."""
    if sum((with_secret, jwks is not None, jwks_url is not None)) != 1:
        raise ValueError("a client has exactly one of: a secret, a JWKS, a JWKS URL")
    client_id = str(uuid.uuid4())
    secret = secrets.token_urlsafe(32) if with_secret else None
    async with database.write() as connection:
        await connection.execute(
            oauth_client.insert().values(
                client_id=client_id,
                name=name,
                scopes=" ".join(scopes.split()),
                secret_hash=hash_secret(secret) if secret else None,
                jwks=json.dumps(jwks).encode() if jwks is not None else None,
                jwks_url=jwks_url,
                revoked=False,
                created=now_us,
            )
        )
    return client_id, secret


async def find(database: Database, client_id: str) -> Client | None:
    async with database.read() as connection:
        row = (
            await connection.execute(
                select(oauth_client).where(oauth_client.c.client_id == client_id)
            )
        ).first()
    return None if row is None else _client(row)


async def all_clients(database: Database) -> list[Client]:
    async with database.read() as connection:
        rows = await connection.execute(select(oauth_client).order_by(oauth_client.c.created))
        return [_client(row) for row in rows]


async def by_name(database: Database, name: str) -> Client | None:
    return next((c for c in await all_clients(database) if c.name == name), None)


async def revoke(database: Database, client_id: str) -> bool:
    async with database.write() as connection:
        result = await connection.execute(
            update(oauth_client).where(oauth_client.c.client_id == client_id).values(revoked=True)
        )
    return bool(result.rowcount)
