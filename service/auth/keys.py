"""The built-in authorization server's signing keys: created on first start, rotated on
command, published as a JWKS.

Keys live in the ``signing_key`` table so that every service process signs and verifies with
the same ones (or in a key file the operator provides, for a key kept outside the database).
The newest unretired key signs; a rotated key stays published for ``RETIRED_GRACE_US`` so the
tokens it signed (at most 300 s old) keep validating. Keys are EC P-256 (ES256): quick to
generate and among the algorithms every SMART client verifies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet, import_key
from sqlalchemy import or_, select, update

from service.db.engine import Database
from service.db.tables import signing_key

SIGNING_ALG = "ES256"  # for generated keys; a key file's RSA key signs RS256
RETIRED_GRACE_US = 600 * 1_000_000

SigningKey = Any  # a joserfc private key (EC or RSA); joserfc's key union is not public API


def alg_of(key: SigningKey) -> str:
    return "ES256" if key.key_type == "EC" else "RS256"


def _new_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True, auto_kid=True)


async def create_key(database: Database, now_us: int) -> SigningKey:
    key = _new_key()
    async with database.write() as connection:
        await connection.execute(
            signing_key.insert().values(
                kid=key.kid,
                alg=SIGNING_ALG,
                private_jwk=json.dumps(key.as_dict(private=True)).encode(),
                created=now_us,
            )
        )
    return key


async def rotate(database: Database, now_us: int) -> SigningKey:
    """Retire every current key and start signing with a new one."""
    async with database.write() as connection:
        await connection.execute(
            update(signing_key).where(signing_key.c.retired.is_(None)).values(retired=now_us)
        )
    return await create_key(database, now_us)


class SigningKeys:
    """The key that signs now, and the key set that verifies (shared through the database)."""

    def __init__(self, database: Database, key_file: Path | None) -> None:
        self.database = database
        self.file_key: SigningKey | None = (
            import_key(json.loads(key_file.read_text(encoding="utf-8"))) if key_file else None
        )

    async def signing(self, now_us: int) -> SigningKey:
        if self.file_key is not None:
            return self.file_key
        async with self.database.read() as connection:
            row = (
                await connection.execute(
                    select(signing_key.c.private_jwk)
                    .where(signing_key.c.retired.is_(None))
                    .order_by(signing_key.c.created.desc())
                    .limit(1)
                )
            ).first()
        if row is None:
            return await create_key(self.database, now_us)
        return import_key(json.loads(bytes(row.private_jwk)))

    async def public_set(self, now_us: int) -> dict[str, Any]:
        """The JWKS to publish: current keys and those retired within the grace period."""
        if self.file_key is not None:
            keys = [self.file_key]
        else:
            async with self.database.read() as connection:
                rows = await connection.execute(
                    select(signing_key.c.private_jwk)
                    .where(
                        or_(
                            signing_key.c.retired.is_(None),
                            signing_key.c.retired > now_us - RETIRED_GRACE_US,
                        )
                    )
                    .order_by(signing_key.c.created.desc())
                )
                keys = [import_key(json.loads(bytes(r.private_jwk))) for r in rows]
        return {
            "keys": [{**k.as_dict(private=False), "use": "sig", "alg": alg_of(k)} for k in keys]
        }

    async def key_set(self, now_us: int) -> KeySet:
        return KeySet.import_key_set(await self.public_set(now_us))  # type: ignore[arg-type]
