"""The ``keyworker`` console script: serve, migrate, load demo data, export OpenAPI, and
administer the built-in authorization server (clients, signing keys)."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from service.settings import PROJECT_ROOT, Settings

DEFAULT_OPENAPI_PATH = PROJECT_ROOT / "openapi" / "openapi.json"


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    # Worker processes build their own Settings from the environment: hand the flags on.
    os.environ["KEYWORKER_HOST"] = args.host or Settings().host
    os.environ["KEYWORKER_PORT"] = str(args.port or Settings().port)
    if args.insecure_no_auth:
        os.environ["KEYWORKER_INSECURE_NO_AUTH"] = "true"
    settings = Settings()
    from service.http_protocol import protocol
    from service.logs import configure

    configure(settings.log_level)
    uvicorn.run(
        "service.asgi:app_factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        http=protocol(
            head_timeout_s=settings.request_head_timeout_s,
            body_timeout_s=settings.request_body_timeout_s,
        ),
    )
    return 0


def _db_upgrade(_: argparse.Namespace) -> int:
    from service.db.migrate import upgrade

    upgrade(Settings().database_url)
    print("database schema is up to date")
    return 0


def _load_demo(args: argparse.Namespace) -> int:
    from service.demo_loader import load_demo

    loaded = asyncio.run(load_demo(Settings(), only_if_empty=args.if_empty))
    if loaded is None:
        print("database already holds data; demo data not loaded")
    else:
        print(f"demo data loaded: {loaded} resources (as of {datetime.date.today()})")
    return 0


def openapi_document() -> dict[str, object]:
    from service.app import create_app

    return create_app(Settings(insecure_no_auth=False)).openapi()


def render_openapi() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def _export_openapi(args: argparse.Namespace) -> int:
    path = Path(args.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_openapi(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from service.assignment_import import run_import

    text = Path(args.file).read_text(encoding="utf-8")
    return asyncio.run(run_import(Settings(), text, skip_bad_rows=args.skip_bad_rows))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="keyworker", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the FHIR API")
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="DEVELOPMENT ONLY: serve without checking access tokens",
    )
    serve.set_defaults(run=_serve)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations").set_defaults(run=_db_upgrade)

    demo = commands.add_parser("load-demo", help="load the synthetic demo data set")
    demo.add_argument(
        "--if-empty", action="store_true", help="only when the database holds no resources"
    )
    demo.set_defaults(run=_load_demo)

    importer = commands.add_parser(
        "import", help="create or update keyworking assignments from a CSV file"
    )
    importer.add_argument("file", help="CSV, one row per assignment (see examples/)")
    importer.add_argument(
        "--skip-bad-rows", action="store_true", help="import the good rows of a file with bad ones"
    )
    importer.set_defaults(run=_import)

    export = commands.add_parser("export-openapi", help="write the OpenAPI document")
    export.add_argument("path", nargs="?", default=str(DEFAULT_OPENAPI_PATH))
    export.set_defaults(run=_export_openapi)

    from service.auth.commands import add_commands

    add_commands(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
