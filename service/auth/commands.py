"""``keyworker clients …`` and ``keyworker keys rotate``: the authorization server's admin.

Registered on the console script by ``service.cli``. A secret is printed once, at
registration, and never stored in clear; ``clients demo`` keeps the demo client's secret in a
file under ``var/`` so ``make run`` can print a working curl line on every start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from joserfc.jwk import import_key

from service.auth import clients, keys
from service.db.engine import Database
from service.settings import PROJECT_ROOT, Settings

DEMO_NAME = "keyworker-demo"
DEMO_SCOPES = "system/*.cruds"
DEMO_FILE = PROJECT_ROOT / "var" / "demo-client.json"


def _now_us() -> int:
    return time.time_ns() // 1000


def _with_database(work: Callable[[Database], Awaitable[int]]) -> int:
    async def run() -> int:
        database = Database(Settings().database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def public_jwks(path: Path) -> dict[str, Any]:
    """The public half of a JWK or JWKS file: private members never reach the database."""
    document = json.loads(path.read_text(encoding="utf-8"))
    found = document.get("keys", [document]) if isinstance(document, dict) else []
    published = []
    for jwk in found:
        public = import_key(jwk).as_dict(private=False)
        published.append({**{k: v for k, v in jwk.items() if k in ("alg", "use")}, **public})
    if not published:
        raise SystemExit(f"{path} holds no JWK")
    return {"keys": published}


def _add(args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        client_id, secret = await clients.register(
            database,
            name=args.name,
            scopes=args.scopes,
            now_us=_now_us(),
            with_secret=args.secret,
            jwks=public_jwks(Path(args.jwk_file)) if args.jwk_file else None,
            jwks_url=args.jwks_url,
        )
        if args.json:
            print(json.dumps({"client_id": client_id, "client_secret": secret}))
        else:
            print(f"client_id: {client_id}")
            if secret:
                print(f"client_secret: {secret}   (shown once; store it now)")
        return 0

    return _with_database(work)


def _list(_: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        for client in await clients.all_clients(database):
            method = "secret" if client.secret_hash else "jwks" if client.jwks else "jwks-url"
            state = "REVOKED" if client.revoked else "active"
            print(f"{client.client_id}\t{client.name}\t{method}\t{state}\t{client.scopes}")
        return 0

    return _with_database(work)


def _revoke(args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        if not await clients.revoke(database, args.client_id):
            print(f"no client {args.client_id}")
            return 1
        print(f"revoked {args.client_id}")
        return 0

    return _with_database(work)


def _demo(args: argparse.Namespace) -> int:
    """Register the demo client unless the one in ``--file`` is still registered and live."""
    path = Path(args.file)
    saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    fresh: dict[str, Any] = {}

    async def work(database: Database) -> int:
        known = await clients.find(database, saved["client_id"]) if saved else None
        if known is None or known.revoked:
            client_id, secret = await clients.register(
                database, name=DEMO_NAME, scopes=DEMO_SCOPES, now_us=_now_us(), with_secret=True
            )
            fresh.update(client_id=client_id, client_secret=secret)
        return 0

    _with_database(work)
    if fresh:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fresh), encoding="utf-8")
        path.chmod(0o600)
    demo = fresh or saved or {}
    if args.server is None:
        print(json.dumps(demo))
    else:
        print(_demo_usage(args.server.rstrip("/"), path, demo["client_id"], demo["client_secret"]))
    return 0


def _demo_usage(server: str, path: Path, client_id: str, secret: str) -> str:
    """Exactly how to get a token and call the API, as ``make run`` prints it."""
    extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
    return "\n".join(
        [
            f"  Demo client ({DEMO_SCOPES}), kept in {path}:",
            "  1. Get an access token (valid 300 s):",
            f"     TOKEN=$(curl -s -u '{client_id}:{secret}' -d grant_type=client_credentials \\",
            f"       {server}/auth/token | {extract})",
            "  2. Call the API with it:",
            '     curl -s -H "Authorization: Bearer $TOKEN" \\',
            f"       {server}/fhir/CareTeam/ct-amara-okafor",
        ]
    )


def _rotate(_: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        key = await keys.rotate(database, _now_us())
        print(f"signing with new key {key.kid}; the previous keys stay published for 10 minutes")
        return 0

    return _with_database(work)


def add_commands(commands: Any) -> None:
    """Add ``clients`` and ``keys`` to the console script's subcommands."""
    registry = commands.add_parser("clients", help="OAuth clients of the built-in server")
    sub = registry.add_subparsers(dest="clients_command", required=True)
    add = sub.add_parser("add", help="register a client and print its id (and secret)")
    add.add_argument("--name", required=True)
    add.add_argument("--scopes", required=True, help='e.g. "system/*.rs system/CareTeam.cruds"')
    how = add.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--secret", action="store_true", help="client_secret_basic or client_secret_post"
    )
    how.add_argument("--jwk-file", help="public JWK or JWKS file (private_key_jwt)")
    how.add_argument("--jwks-url", help="URL of the client's JWKS (private_key_jwt)")
    add.add_argument("--json", action="store_true", help="print one JSON object")
    add.set_defaults(run=_add)
    sub.add_parser("list", help="list clients").set_defaults(run=_list)
    revoke = sub.add_parser("revoke", help="revoke a client")
    revoke.add_argument("client_id")
    revoke.set_defaults(run=_revoke)
    demo = sub.add_parser("demo", help="register the demo client once; print it as JSON")
    demo.add_argument("--file", default=str(DEMO_FILE))
    demo.add_argument("--server", help="print curl usage against this server URL instead of JSON")
    demo.set_defaults(run=_demo)

    signing = commands.add_parser("keys", help="the built-in server's signing keys")
    signing_sub = signing.add_subparsers(dest="keys_command", required=True)
    signing_sub.add_parser("rotate", help="start signing with a new key").set_defaults(run=_rotate)
