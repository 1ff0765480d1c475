"""Engines and transactions: one engine per DATABASE_URL (SQLite pragmas, the NUL rule), the
one way to open a write transaction, and SQLite's WAL upkeep."""

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from api.config import Settings
from api.errors import BadRequest


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


def refuse_nul(rows: Iterable[Any]) -> None:
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
    """_refuse_nul for every statement SQLAlchemy runs."""
    refuse_nul(parameters if executemany else (parameters,))


def create_db_engine(settings: Settings) -> Engine:
    """The engine for DATABASE_URL. `hide_parameters`: SQL parameters (notes, emails) stay out
    of its log lines and of the messages of the exceptions it raises."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        _configure_sqlite(engine, settings)
        _SQLITE_WRITE_LOCKS[engine] = threading.Lock()
    else:
        connect_args: dict[str, object] = {}
        options: dict[str, object] = {}
        if url.get_backend_name() == "postgresql":
            # Whatever the server's default: the writes rely on each statement seeing what
            # committed before it (the sync feed's order, the replay of a create that waited
            # for the account row: api/services/sessions.py create_sessions).
            options["isolation_level"] = "READ COMMITTED"
            connect_args["connect_timeout"] = settings.db_connect_timeout_seconds
            if settings.db_statement_timeout_ms:
                timeout = int(settings.db_statement_timeout_ms)
                connect_args["options"] = f"-c statement_timeout={timeout}"
        engine = create_engine(
            url,
            hide_parameters=True,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_pre_ping=True,
            pool_timeout=30,
            connect_args=connect_args,
            **options,
        )
    event.listen(engine, "before_cursor_execute", _refuse_nul_characters)
    return engine


def write_lock(engine: Engine) -> AbstractContextManager[object]:
    """The process's lock that writers to `engine` queue on (SQLite; none elsewhere)."""
    return _SQLITE_WRITE_LOCKS.get(engine) or nullcontext()


@contextmanager
def write_transaction(db: Session) -> Iterator[Connection]:
    """Run the block as one write transaction of `db`; the block commits. Yields the
    transaction's connection, for Core statements.

    Any read transaction `db` had open (authentication) is ended first, and on SQLite the new
    transaction begins IMMEDIATE under the process's write lock. Whatever the block leaves
    uncommitted, on an exception or not, is rolled back before the lock is released.
    """
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    if db.in_transaction():
        db.commit()  # end the read transaction before queueing for the lock
    with write_lock(engine):
        try:
            yield db.connection(execution_options={_WRITE_OPTION: True})
        finally:
            if db.in_transaction():
                db.rollback()


def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


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
