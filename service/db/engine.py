"""Connections to the database, with the transaction behaviour each backend needs.

PostgreSQL (asyncpg) runs READ COMMITTED and writers lock the rows they change. SQLite, the
embedded default, allows one writer at a time: write transactions start with
``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of failing half-way.
"""

from __future__ import annotations

import asyncio
import secrets
import weakref
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import asyncpg
from sqlalchemy import Select, TextClause, event, select
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from service.db.tables import server_secret

# What ``compiled`` and ``written`` take: statements built once and kept by their builders.
Statement = Select[Any] | TextClause


class Database:
    """The engine and the two ways in: a read connection and a write transaction."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {}
        half = max(pool_size // 2, 1)
        if self.is_sqlite:
            options["connect_args"] = {"timeout": 30}
        else:
            # A worker keeps pool_size connections and opens no others: half serve the hot
            # reads (``_ReadPool``), half everything else, and a request beyond them waits
            # for one. Opening a connection (TLS, authentication, a cold cache of prepared
            # statements) costs more than the requests it serves: at 32 concurrent reads a
            # pool of 10 that opened and closed overflow connections spent a fifth of its CPU
            # connecting; in the CRUD mix, overflow of half the pool opened 1.5-2.3
            # connections a second and cost 7-10% more CPU a request than none (one worker,
            # wrk -c16: 1,565-1,631 against 1,694-1,806 us of machine CPU, p99 49-97 ms
            # against 138-143).
            options.update(pool_size=half, max_overflow=0, pool_pre_ping=False)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        self._writer = self.engine
        self._reads = _ReadPool(self.engine, half)
        # Per database, not per module: tests run apps on two databases in one process.
        self._pinned: ContextVar[asyncpg.Connection | None] = ContextVar(
            f"pinned_read_connection_{id(self)}", default=None
        )
        if self.is_sqlite:
            _sqlite_explicit_begin(self.engine)
            self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            yield connection

    async def first_row(
        self, statement: Select[Any], params: Mapping[str, Any]
    ) -> Sequence[Any] | None:
        """The first row of a read that is one statement, by column position.

        On PostgreSQL the statement, compiled once, goes to the driver as ``driver_rows``
        sends it, which matters on the busiest path, a read by id.
        """
        if self.is_sqlite:
            async with self.engine.connect() as connection:
                found: Sequence[Any] | None = (await connection.execute(statement, params)).first()
                return found
        sql, arguments = compiled(statement, self.engine.dialect)
        rows = await self.driver_rows(sql, *arguments(params))
        return rows[0] if rows else None

    async def driver_rows(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        """PostgreSQL only: the rows of one statement, sent to asyncpg (prepared once per
        connection) on a connection of the read pool.

        No transaction around it (one statement sees one snapshot) and no SQLAlchemy
        ``Connection`` either: its checkout, driver lookup and release cost a third of the
        CPU of a read by id (230 against 365 us a call, /tmp micro-benchmark).
        """
        pinned = self._pinned.get()
        if pinned is not None:
            rows: list[Sequence[Any]] = await pinned.fetch(sql, *args)
            return rows
        return await self._reads.fetch(sql, *args)

    @asynccontextmanager
    async def one_connection(self) -> AsyncIterator[None]:
        """PostgreSQL: the block's ``driver_rows`` statements run on one connection of the
        read pool, taken once: when more requests than connections are in flight, a write's
        statements (an update without a lock sends three) do not each queue again behind
        other requests' reads. The block must not run statements concurrently (one
        connection runs one at a time)."""
        if self.is_sqlite or self._pinned.get() is not None:
            yield
            return
        async with self._reads.connection() as driver:
            token = self._pinned.set(driver)
            try:
                yield
            finally:
                self._pinned.reset(token)

    @asynccontextmanager
    async def bounded_read(self, timeout_ms: int) -> AsyncIterator[Reader]:
        """Statements of one search, each cancelled after ``timeout_ms``.

        On PostgreSQL they run on one connection of the read pool, with no transaction
        around them: opening one, and ending it, were two of a search's five round trips
        and a sixth of its CPU. So a search's page, total and included resources are each
        read at their own moment, as a client paging through results reads each page. The
        driver cancels a statement that outruns the limit (``TimeoutError``). SQLite has no
        such limit; there the caps on a search's parameters, values and includes bound its
        work.
        """
        if self.is_sqlite:
            async with self.engine.connect() as connection:
                yield _SqliteReader(connection)
            return
        async with self._reads.connection() as driver:
            yield _PostgresReader(driver, self.engine.dialect, timeout_ms / 1000)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self._writer.begin() as connection:
            yield connection

    async def secret(self, name: str) -> bytes:
        """A server-wide random secret, created once and shared by every process."""
        async with self.read() as connection:
            value = await connection.scalar(
                select(server_secret.c.value).where(server_secret.c.name == name)
            )
        if value is not None:
            return bytes(value)
        try:
            async with self.write() as connection:
                await connection.execute(
                    server_secret.insert().values(name=name, value=secrets.token_bytes(32))
                )
        except IntegrityError:
            pass  # another process created it first; read theirs
        return await self.secret(name)

    async def dispose(self) -> None:
        await self._reads.close()
        await self.engine.dispose()


class Reader(Protocol):
    """How statements run in a bounded read: by column position, statements built once
    (by their builders' caches) are compiled once."""

    postgres: bool

    async def rows(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]: ...


class _PostgresReader:
    """Statements go straight to asyncpg (prepared once per connection): SQLAlchemy's
    execution (cache key, parameter processing, result wrapping) cost more CPU than the
    searches it ran. ``timeout`` (seconds) bounds each statement."""

    postgres = True

    def __init__(self, driver: Any, dialect: Dialect, timeout: float | None = None) -> None:
        self.driver = driver
        self.dialect = dialect
        self.timeout = timeout

    async def rows(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        sql, arguments = compiled(statement, self.dialect)
        found: list[Sequence[Any]] = await self.driver.fetch(
            sql, *arguments(params or {}), timeout=self.timeout
        )
        return found


class _SqliteReader:
    postgres = False

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def rows(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        found: Sequence[Sequence[Any]] = (await self.connection.execute(statement, params)).all()
        return found


class _ReadPool:
    """PostgreSQL: the connections of the busiest reads (by id, ``$accountable``, search),
    opened on first use with the engine's connection arguments, at most ``size`` of them.

    Not asyncpg's ``Pool``: its acquire and release (a task to shield each release, a
    timeout scope on each side, an inactivity timer re-armed every time, a proxy object)
    cost as much CPU as the statement they wrapped, 102-110 against 57-66 us a read by id
    (sequential calls, /tmp micro-benchmark). Here a free connection is taken and given back
    without waiting; a caller beyond ``size`` waits for one. Nothing run on these
    connections changes the session (no transaction, SET, LISTEN, lock or cursor), so one
    goes back as it is: a statement its caller abandoned (cancelled, or past its time limit)
    is being cancelled by asyncpg, whose next statement on that connection waits for the
    cancel to finish. A connection that was closed (by the server, or broken) is dropped,
    and its place opened again when next needed.

    Its sessions plan each prepared statement once, whatever its values
    (``plan_cache_mode``): these statements are index lookups whose best plan does not
    depend on the values, but PostgreSQL overestimated the generic plan of some (an include
    round: keys from an array) and replanned them on every execution, and that planning
    cost more than the statement (0.28 against 0.08 ms of PostgreSQL's CPU an include
    round, /tmp micro-benchmark). A search's page gets a generic plan too (0.10 against
    0.14 ms for the benchmark's search by NHS number); a search whose best plan does
    depend on its values (a very common code with a sort) may be planned worse than
    PostgreSQL's own choice would, and the search time limit bounds what that costs.
    """

    def __init__(self, engine: AsyncEngine, size: int) -> None:
        self.engine = engine
        self.size = size
        self.opened = 0
        self._idle: list[asyncpg.Connection] = []
        self._waiting: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        async with self.connection() as driver:
            rows: list[Sequence[Any]] = await driver.fetch(sql, *args)
            return rows

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        driver = await self._acquire()
        try:
            yield driver
        finally:
            self._release(driver)

    async def _acquire(self) -> asyncpg.Connection:
        while True:
            while self._idle:
                driver = self._idle.pop()
                if not driver.is_closed():
                    return driver
                self.opened -= 1  # the server ended it while it was idle
            if self.opened < self.size:
                self.opened += 1
                try:
                    return await self._connect()
                except BaseException:
                    self.opened -= 1
                    self._hand_on(None)
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                driver = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._hand_on(waiter.result())
                raise
            if driver is not None:
                return driver
            # A connection was closed: its place is free to open, unless taken meanwhile.

    async def _connect(self) -> asyncpg.Connection:
        _, arguments = self.engine.dialect.create_connect_args(self.engine.url)
        cache = arguments.pop("prepared_statement_cache_size", 100)
        return await asyncpg.connect(
            **arguments,
            statement_cache_size=cache,
            server_settings={"plan_cache_mode": "force_generic_plan"},
        )

    def _release(self, driver: asyncpg.Connection) -> None:
        if self._closed or driver.is_closed() or driver.is_in_transaction():
            self._discard(driver)
            return
        self._hand_on(driver)

    def _discard(self, driver: asyncpg.Connection) -> None:
        driver.terminate()
        self.opened -= 1
        self._hand_on(None)

    def _hand_on(self, driver: asyncpg.Connection | None) -> None:
        """Give a connection (or, with None, a free place) to the first caller waiting."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(driver)
                return
        if driver is not None:
            self._idle.append(driver)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for driver in idle:
            self.opened -= 1
            await driver.close()


class _Arguments:
    """A compiled statement's positional arguments from named parameters; values the
    statement itself holds (constants SQLAlchemy binds) fill the rest."""

    def __init__(self, names: Sequence[str], fixed: Mapping[str, Any]) -> None:
        self.names = tuple(names)
        self.fixed = dict(fixed)

    def __call__(self, params: Mapping[str, Any]) -> list[Any]:
        fixed = self.fixed
        return [params[n] if n in params else fixed[n] for n in self.names]


# Kept as long as the statement lives: as long as its builder's cache keeps it.
_COMPILED: weakref.WeakKeyDictionary[Statement, tuple[str, _Arguments]] = (
    weakref.WeakKeyDictionary()
)


def compiled(statement: Statement, dialect: Dialect) -> tuple[str, _Arguments]:
    """PostgreSQL SQL for a statement, compiled once however often it runs."""
    found = _COMPILED.get(statement)
    if found is None:
        done = statement.compile(dialect=dialect)
        fixed = {n: bind.effective_value for n, bind in done.binds.items() if not bind.required}
        found = str(done), _Arguments(done.positiontup or (), fixed)
        _COMPILED[statement] = found
    return found


@contextmanager
def as_sqlalchemy_errors(statement: object) -> Iterator[None]:
    """The driver's errors, raised as SQLAlchemy raises them (``IntegrityError`` for a broken
    constraint, ``DBAPIError`` with the driver's error, and its SQLSTATE, as ``orig``), for
    work sent to asyncpg directly inside a transaction SQLAlchemy runs."""
    try:
        yield
    except asyncpg.PostgresError as error:
        violation = isinstance(error, asyncpg.IntegrityConstraintViolationError)
        kind = IntegrityError if violation else DBAPIError
        raise kind(str(statement), None, error) from error  # spelled out only on failure


async def written(
    connection: AsyncConnection, statement: Statement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows, by column position, of a statement inside a write transaction (none for
    a statement that returns none).

    On PostgreSQL, once the transaction has begun (SQLAlchemy begins it with the first
    statement), the statement goes to asyncpg directly, compiled once, as reads do: the
    combined writes carry up to thirty array parameters, and SQLAlchemy's processing of them
    on every execution was about a tenth of an update's CPU. The driver's errors are raised
    as SQLAlchemy raises them, so callers catch one kind whichever way the statement went.
    """
    began = connection.sync_connection
    if connection.dialect.name == "postgresql" and began is not None:
        driver = began.connection.driver_connection
        if driver is not None and driver.is_in_transaction():
            with as_sqlalchemy_errors(statement):
                return await _PostgresReader(driver, connection.dialect).rows(statement, params)
    result = await connection.execute(statement, params)
    return result.all() if result.returns_rows else []


def _sqlite_explicit_begin(engine: AsyncEngine) -> None:
    """Take BEGIN away from the driver so write transactions can say IMMEDIATE."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())
