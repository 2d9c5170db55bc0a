"""Test fixtures: the app over HTTP (httpx), on SQLite and on PostgreSQL.

Every test that takes ``client`` runs once per database backend. SQLite always runs.
PostgreSQL runs when reachable at ``KEYWORKER_TEST_POSTGRES_URL`` (an admin URL; a fresh
database is created for the session and dropped after). Where it cannot be reached the
PostgreSQL half is skipped and the summary says so plainly — except with ``CI=true``, where
an unreachable PostgreSQL fails the run: CI never skips it silently.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from service.app import create_app
from service.db.migrate import upgrade
from service.db.tables import INDEX_TABLES, metadata, resource, resource_version
from service.settings import Settings, normalise_database_url

# Every FHIR response body any test receives must be valid R4 (tests/validation.py).
pytest_plugins = ("tests.validation",)

BASE = "http://test/fhir"
POSTGRES_ADMIN_URL = normalise_database_url(
    os.environ.get("KEYWORKER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_postgres_problem: list[str] = []
# Server-wide secrets and keys survive between tests, as they survive restarts.
_KEPT_TABLES = {"server_secret"}


async def _postgres_reachable() -> str | None:
    engine = create_async_engine(POSTGRES_ADMIN_URL)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return None
    except Exception as error:  # any failure means: not reachable
        return f"{type(error).__name__}: {error}"
    finally:
        await engine.dispose()


def pytest_configure(config: pytest.Config) -> None:
    problem = asyncio.run(_postgres_reachable())
    if problem is not None:
        if IN_CI:
            raise pytest.UsageError(
                f"CI=true but PostgreSQL is unreachable at {POSTGRES_ADMIN_URL}: {problem}"
            )
        _postgres_problem.append(problem)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not _postgres_problem:
        return
    reason = f"PostgreSQL unreachable at {POSTGRES_ADMIN_URL}: {_postgres_problem[0]}"
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgresql":
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _postgres_problem:
        terminalreporter.write_line(
            "NOTE: the PostgreSQL half of the suite was SKIPPED "
            f"({_postgres_problem[0]}). Set KEYWORKER_TEST_POSTGRES_URL or run bash .ci/run.",
            yellow=True,
            bold=True,
        )


def _fresh_sqlite(tmp: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp / 'keyworker-test.sqlite3'}"
    upgrade(url)
    return url


async def admin(statement: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the PostgreSQL admin connection."""
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def _sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _fresh_sqlite(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def _postgres_url() -> Iterator[str]:
    name = f"keyworker_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    name = "_sqlite_url" if backend == "sqlite" else "_postgres_url"
    return str(request.getfixturevalue(name))


async def _empty(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                if table.name not in _KEPT_TABLES:
                    await connection.execute(table.delete())
    finally:
        await engine.dispose()


def settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "public_base_url": BASE,
        "insecure_no_auth": True,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def app_factory(
    database_url: str,
) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """Build an app (with settings overrides) on the empty test database; yields clients."""
    await _empty(database_url)
    stack: list[Any] = []

    async def build(**overrides: Any) -> httpx.AsyncClient:
        app = create_app(settings_for(database_url, **overrides))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        stack.append((lifespan, client))
        return client

    yield build
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def client(
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]],
) -> httpx.AsyncClient:
    return await app_factory()


@pytest.fixture
def db_state(database_url: str) -> Callable[[], Awaitable[dict[str, int]]]:
    """Row counts of every table a write touches: equal before and after means no write."""

    async def state() -> dict[str, int]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                counts = {}
                for table in (resource, resource_version, *INDEX_TABLES.values()):
                    counts[table.name] = int(
                        await connection.scalar(select(func.count()).select_from(table)) or 0
                    )
                return counts
        finally:
            await engine.dispose()

    return state


@pytest.fixture
def app_state(client: httpx.AsyncClient) -> Any:
    """The state of the app behind ``client`` (its Interactions, settings), for tests that
    drive the service below HTTP, as the CLI does."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return transport.app.state  # type: ignore[attr-defined]
