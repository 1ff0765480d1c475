"""Engines and sessions: one engine per DATABASE_URL, one transaction per request, the gate
that gives requests their turn at the database, and DriverConnection for the hottest writes."""

import asyncio
import contextvars
import logging
import threading
import weakref
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Dialect, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select
from sqlmodel import Session

from api.config import Settings
from api.errors import BadRequest

logger = logging.getLogger("releaselog.db")


def _configure_sqlite(engine: Engine, settings: Settings) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        # In WAL mode, NORMAL already makes every acknowledged commit survive a crash of this
        # process (the commit is in the WAL file, which the OS writes out); FULL also survives
        # a power cut or OS crash, at the price of an fsync per commit. See SQLITE_SYNCHRONOUS.
        cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(settings.sqlite_wal_autocheckpoint)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # Writes (see write_transaction) BEGIN IMMEDIATE: they take the write lock up front,
        # so the busy timeout applies and no writer fails upgrading a read lock ("database is
        # locked"); writers also commit in the order they began, which the sync feed relies
        # on. Reads BEGIN DEFERRED and never wait for writers (WAL).
        mode = "IMMEDIATE" if connection.get_execution_options().get(_WRITE_OPTION) else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")


_WRITE_OPTION = "releaselog_write"


# One lock per SQLite engine: this process's writers queue here, in order, instead of
# polling SQLite's busy handler. Other processes are still kept out by BEGIN IMMEDIATE.
_SQLITE_WRITE_LOCKS: "WeakKeyDictionary[Engine, threading.Lock]" = WeakKeyDictionary()


def _refuse_nul(rows: Iterable[Any]) -> None:
    """PostgreSQL cannot store U+0000 in text (the driver fails: a 500). Refuse it up front,
    on every backend alike, for every statement: no endpoint, present or future, can forget.
    `rows`: each statement's parameters (a dict or a sequence)."""
    for row in rows:
        values = row.values() if isinstance(row, dict) else row or ()
        for value in values:
            if isinstance(value, str) and "\x00" in value:
                raise BadRequest("Text must not contain NUL (U+0000) characters.")


def _refuse_nul_characters(  # type: ignore[no-untyped-def]
    _connection, _cursor, _statement, parameters, _context, executemany
) -> None:
    """_refuse_nul for every statement SQLAlchemy runs (DriverConnection applies it itself)."""
    _refuse_nul(parameters if executemany else (parameters,))


def create_db_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        _configure_sqlite(engine, settings)
        _SQLITE_WRITE_LOCKS[engine] = threading.Lock()
    else:
        connect_args: dict[str, object] = {}
        if url.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = settings.db_connect_timeout_seconds
            if settings.db_statement_timeout_ms:
                timeout = int(settings.db_statement_timeout_ms)
                connect_args["options"] = f"-c statement_timeout={timeout}"
        engine = create_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_pre_ping=True,
            pool_timeout=30,
            connect_args=connect_args,
        )
    event.listen(engine, "before_cursor_execute", _refuse_nul_characters)
    return engine


@contextmanager
def write_transaction(db: Session) -> Iterator[None]:
    """Run the block as this request's one write transaction; the block commits.

    Any read transaction the request had open (authentication) is ended first, and on SQLite
    the new transaction begins IMMEDIATE under the process's write lock. On an exception the
    transaction is rolled back before the lock is released.
    """
    engine = db.get_bind()
    lock = _SQLITE_WRITE_LOCKS.get(engine) if isinstance(engine, Engine) else None
    if db.in_transaction():
        db.commit()  # end the read transaction before queueing for the lock
    with lock or nullcontext():
        db.connection(execution_options={_WRITE_OPTION: True})
        try:
            yield
        except BaseException:
            db.rollback()
            raise
        if db.in_transaction():
            db.rollback()


def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


class DatabaseGate:
    """Requests wait here, on the event loop, for their turn at the database.

    Without it, a request waiting for the database (a pool connection, or SQLite's write lock,
    which every transaction takes) waits inside a worker thread. When every worker is waiting
    like that, the request that holds the database cannot get a worker to finish and release
    it: 50 concurrent requests stalled until the busy timeout answered "database is locked".
    Waiting here holds no worker, so the holder always finishes.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        # The threads of the writes run in a turn (run_write): one per turn, so a write never
        # queues for a thread; started when first needed.
        self.writers = ThreadPoolExecutor(size, thread_name_prefix="releaselog-write")
        # asyncio primitives belong to one event loop; tests run the app on several.
        self._semaphores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.size)
        return semaphore

    @asynccontextmanager
    async def turn(self, scope: MutableMapping[str, Any]) -> AsyncIterator[None]:
        """The request's turn (`scope`: its ASGI scope). Re-entrant: a request that already
        holds its turn does not wait for a second one, which could deadlock when every turn
        is held by a request waiting like that."""
        if scope.get(_TURN_HELD):
            yield
            return
        async with self.semaphore():
            scope[_TURN_HELD] = True
            try:
                yield
            finally:
                scope[_TURN_HELD] = False


_TURN_HELD = "releaselog.database_turn"


SQLITE_CONCURRENT_REQUESTS = 4


def database_gate(settings: Settings) -> DatabaseGate:
    """As many requests as the pool has connections (PostgreSQL).

    SQLite runs one writer at a time, so a few requests at once keep it busy; more only make
    worker threads fight over the GIL while they queue for the write lock (measured: 4 gave
    ~30 % more POSTs per second than 30). Writers queue on the process's write lock inside
    their worker thread, which they hold until they finish.
    """
    if make_url(settings.database_url).get_backend_name() == "sqlite":
        return DatabaseGate(min(SQLITE_CONCURRENT_REQUESTS, settings.db_pool_size))
    return DatabaseGate(settings.db_pool_size + settings.db_max_overflow)


# --- the hottest writes, on the driver ------------------------------------------------------

Processor = Callable[[Any], Any]
T = TypeVar("T")
Item = TypeVar("Item")
Result = TypeVar("Result")
Statement = Select[Any] | UpdateBase


def _converted(
    values: Mapping[str, Any], names: Sequence[str], processors: Sequence[Processor | None]
) -> list[Any]:
    return [
        value if process is None or value is None else process(value)
        for value, process in zip((values[name] for name in names), processors, strict=True)
    ]


@dataclass(frozen=True)
class _Compiled:
    """A statement compiled once for a dialect: its SQL, its parameters in the driver's
    order, SQLAlchemy's own bind processor for each, and result processors for its rows."""

    compiled: Any
    sql: str
    names: tuple[str, ...]
    processors: tuple[Processor | None, ...]
    positional: bool
    expanding: bool  # has `IN (:list)` parameters: the SQL depends on the values
    results: tuple[Processor | None, ...] | None  # None: the statement returns no rows

    def bind(self, values: Mapping[str, Any]) -> tuple[str, Sequence[Any] | dict[str, Any]]:
        sql, names, processors = self.sql, self.names, self.processors
        if self.expanding:
            state = self.compiled.construct_expanded_state(values)
            sql, values = state.statement, state.parameters
            names = tuple(state.positiontup or state.parameters)
            found = state.processors or {}
            processors = tuple(found.get(name) for name in names)
        converted = _converted(values, names, processors)
        return sql, converted if self.positional else dict(zip(names, converted, strict=True))

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        assert self.results is not None
        return tuple(
            value if process is None or value is None else process(value)
            for value, process in zip(raw, self.results, strict=True)
        )


@lru_cache(maxsize=256)
def _compile(statement: Statement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or compiled.binds)
    processors = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    returned = list(statement.exported_columns)
    results = None
    if isinstance(statement, Select) or returned:
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in returned
        )
    expanding = any(bind.expanding for bind in compiled.binds.values())
    return _Compiled(
        compiled, compiled.string, names, processors, dialect.positional, expanding, results
    )


class DriverConnection:
    """A pooled connection that runs prebuilt Core statements on the DBAPI cursor itself.

    SQLAlchemy spends ~50-100 µs of Python on each execution (cache key, execution context,
    result set-up) where the driver needs ~5: most of a small write's time. Here a statement
    is compiled once per dialect, and values pass through the same bind and result processors
    SQLAlchemy applies, so what is stored and read back is identical. Driver errors are raised
    as SQLAlchemy's own exceptions (IntegrityError, OperationalError, ...), a connection that
    lost its server is dropped from the pool, and the NUL rule of every statement applies.

    `execute(statement, values)` has the call shape of SQLAlchemy's Connection.execute (a list
    of value dicts: executemany) and returns the rows as tuples, so code that only executes
    statements can be handed either. Statements must be built once (module constants): the
    compiled form is cached by identity.
    """

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._connection = connection
        self._cursor = connection.cursor()
        self.dialect = dialect

    def execute(
        self, statement: Statement, values: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> list[tuple[Any, ...]]:
        compiled = _compile(statement, self.dialect)
        if not isinstance(values, Mapping):  # executemany: one SQL text for every row
            assert not compiled.expanding, "executemany of a statement with IN (:list)"
            bound = [compiled.bind(row) for row in values]
            if bound:
                self._run(bound[0][0], [params for _sql, params in bound], many=True)
            return []
        sql, params = compiled.bind(values)
        self._run(sql, [params], many=False)
        if compiled.results is None:
            return []
        return [compiled.row(raw) for raw in self._cursor.fetchall()]

    def _run(self, sql: str, rows: list[Any], *, many: bool) -> None:
        _refuse_nul(rows)
        try:
            if many:
                self._cursor.executemany(sql, rows)
            else:
                self._cursor.execute(sql, rows[0] if rows else ())
        except self.dialect.loaded_dbapi.Error as error:
            raise self._translated(error, sql, rows) from error

    def begin_immediate(self) -> None:
        """SQLite: take the database write lock now (the driver is in autocommit mode)."""
        self._run("BEGIN IMMEDIATE", [], many=False)

    def commit(self) -> None:
        try:
            self._connection.commit()
        except self.dialect.loaded_dbapi.Error as error:
            raise self._translated(error, "COMMIT", []) from error

    def _translated(self, error: Exception, sql: str, params: Any) -> DBAPIError:
        if self.dialect.is_disconnect(error, self._connection, self._cursor):
            self._connection.invalidate(error)  # never handed out again
        return DBAPIError.instance(
            sql, params, error, self.dialect.loaded_dbapi.Error, dialect=self.dialect
        )


# What the functions shared by both kinds of write take: they only execute statements.
Executes = Connection | DriverConnection


def wal_checkpoint(engine: Engine) -> None:
    """SQLite: copy the pages the WAL holds back into the database file, so that the next
    write can start the WAL over. PASSIVE: it neither waits for nor blocks readers and
    writers. Done here, shortly after writes (GroupCommit's follow-up), rather than by the
    commit that fills the WAL, inside the write lock while every queued write waits
    (SQLITE_WAL_AUTOCHECKPOINT stays the bound for when this falls behind)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        cursor.fetchall()
        cursor.close()
    finally:
        raw.close()


@contextmanager
def driver_transaction(engine: Engine) -> Iterator[DriverConnection]:
    """One write transaction through DriverConnection; the block commits, and anything it
    leaves uncommitted is rolled back. Locks as write_transaction does: on SQLite, the
    process's write lock, then BEGIN IMMEDIATE."""
    lock = _SQLITE_WRITE_LOCKS.get(engine)
    raw = engine.raw_connection()
    try:
        with lock or nullcontext():
            connection = DriverConnection(raw, engine.dialect)
            try:
                if lock is not None:
                    connection.begin_immediate()
                yield connection
            finally:
                if raw.is_valid:
                    raw.rollback()  # a no-op after a commit
    finally:
        raw.close()  # back to the pool


async def run_write(
    engine: Engine,
    gate: DatabaseGate,
    scope: MutableMapping[str, Any],
    write: Callable[..., T],
    *args: Any,
) -> T:
    """`write(engine, *args)` in a worker thread, in the request's database turn.

    The hop is asyncio's own executor (with the caller's context variables, as anyio copies
    them): anyio's to_thread machinery costs the event loop ~40 µs more per call. A write
    whose request is cancelled (the client went away) still runs to its end, holding the turn:
    what it commits is committed. (Measured: running a create on the event loop instead, to
    save the hop, gained ~5 % and took p99 from 40 ms to ~190 ms.)
    """
    async with gate.turn(scope):
        call = partial(contextvars.copy_context().run, write, engine, *args)
        future = asyncio.get_running_loop().run_in_executor(gate.writers, call)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise


@dataclass
class _Queued:
    item: Any
    context: contextvars.Context
    future: "asyncio.Future[Any]"


@dataclass
class _GroupQueue:
    """One event loop's writes waiting for the next group, and the task that runs groups."""

    waiting: list[_Queued]
    task: "asyncio.Task[None] | None" = None
    # The follow-up of the latest commits: scheduled (a timer), then running (a task).
    follow_up: "asyncio.TimerHandle | asyncio.Task[None] | None" = None


class GroupCommit(Generic[Item, Result]):
    """Many small writes of one kind in one transaction, with one commit (group commit).

    `write(connection, items)` writes a list of items (and returns one result per item); the
    transaction is this class's. An item submitted while a group is running waits for it to
    finish; then everything that queued meanwhile is written as the next group: one turn at
    the database, one worker-thread hop, one `write` (a few statements for all the items
    instead of a few for each) and one commit. A lone item is a group of one, so nothing
    waits for company.

    An item is acknowledged only after the commit that holds it. When `write` raises for a
    group, the group rolls back and each item is written again alone, in a transaction of its
    own, so only a failing item fails and every other one commits as it would have alone.
    An item whose request is cancelled is still written with its group.

    `follow_up()`, when given, runs in a worker thread (in a turn of its own) `follow_up_delay`
    seconds after a group commits, once for all the groups that commit meanwhile, never in
    the path of a write: for upkeep the commits make due, such as a WAL checkpoint.
    """

    def __init__(
        self,
        engine: Engine,
        gate: DatabaseGate,
        write: Callable[[DriverConnection, list[Item]], list[Result]],
        *,
        max_group: int = 64,
        committed: Callable[[int], object] | None = None,
        follow_up: Callable[[], object] | None = None,
        follow_up_delay: float = 0.1,
    ) -> None:
        self.engine = engine
        self.gate = gate
        self.max_group = max_group
        self.follow_up_delay = follow_up_delay
        self._write = write
        self._committed = committed  # told how many items each transaction committed
        self._follow_up = follow_up
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _GroupQueue] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, item: Item) -> Result:
        """The item's result, once the transaction that wrote it has committed."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _GroupQueue([])
        future = loop.create_future()
        queue.waiting.append(_Queued(item, contextvars.copy_context(), future))
        if queue.task is None:
            queue.task = loop.create_task(self._run_groups(queue))
        result: Result = await future
        return result

    async def _run_groups(self, queue: _GroupQueue) -> None:
        loop = asyncio.get_running_loop()
        try:
            while queue.waiting:
                group = queue.waiting[: self.max_group]
                del queue.waiting[: self.max_group]
                try:
                    async with self.gate.turn({}):
                        outcomes = await loop.run_in_executor(self.gate.writers, self._run, group)
                except Exception as error:  # no waiting item is left hanging
                    outcomes = [(False, error)] * len(group)
                for queued, (ok, value) in zip(group, outcomes, strict=True):
                    if queued.future.done():  # its request was cancelled
                        continue
                    if ok:
                        queued.future.set_result(value)
                    else:
                        queued.future.set_exception(value)
                if any(ok for ok, _value in outcomes):
                    self._follow_up_soon(queue, loop)
        finally:
            queue.task = None

    def _follow_up_soon(self, queue: _GroupQueue, loop: asyncio.AbstractEventLoop) -> None:
        if self._follow_up is not None and queue.follow_up is None:
            queue.follow_up = loop.call_later(
                self.follow_up_delay, self._start_follow_up, queue, loop
            )

    def _start_follow_up(self, queue: _GroupQueue, loop: asyncio.AbstractEventLoop) -> None:
        queue.follow_up = loop.create_task(self._run_follow_up(queue))

    async def _run_follow_up(self, queue: _GroupQueue) -> None:
        assert self._follow_up is not None
        loop = asyncio.get_running_loop()
        try:
            async with self.gate.turn({}):
                await loop.run_in_executor(self.gate.writers, self._follow_up)
        except Exception:  # upkeep: the commits it follows stand; the next one tries again
            logger.exception("The follow-up of a group commit failed")
        finally:
            queue.follow_up = None

    def _run(self, group: list[_Queued]) -> list[tuple[bool, Any]]:
        """In a worker thread: the group in one transaction, or, when that fails, each item
        in a transaction of its own (in its request's context, for its log lines)."""
        if len(group) > 1:
            try:
                results = self._transaction([queued.item for queued in group])
            except Exception:  # each item is written again alone, and fails alone
                pass
            else:
                return [(True, result) for result in results]
        outcomes: list[tuple[bool, Any]] = []
        for queued in group:
            try:
                outcomes.append((True, queued.context.run(self._transaction, [queued.item])[0]))
            except Exception as error:  # handed to the item's caller
                outcomes.append((False, error))
        return outcomes

    def _transaction(self, items: list[Item]) -> list[Result]:
        with driver_transaction(self.engine) as connection:
            results = self._write(connection, items)
            connection.commit()
        if self._committed is not None:
            self._committed(len(items))
        return results
