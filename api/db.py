"""Engines and sessions: one engine per DATABASE_URL, one transaction per request."""

from collections.abc import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from api.config import Settings


def _configure_sqlite(engine: Engine, settings: Settings) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        # FULL: a commit is on disk before we answer, so an acknowledged write survives a
        # process crash and a power cut alike (NORMAL in WAL mode survives only the former).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # BEGIN IMMEDIATE takes the write lock up front, so the busy timeout applies and two
        # writers never deadlock upgrading read locks ("database is locked"). It also makes
        # writers commit in the order they began, which the sync feed relies on.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


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
        return engine
    connect_args: dict[str, object] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = settings.db_connect_timeout_seconds
        if settings.db_statement_timeout_ms:
            timeout = int(settings.db_statement_timeout_ms)
            connect_args["options"] = f"-c statement_timeout={timeout}"
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_timeout=30,
        connect_args=connect_args,
    )


def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session
