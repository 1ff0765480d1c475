"""Core statements run on the DBAPI cursor: the one executor of every session write.

SQLAlchemy spends far more Python on each execution (cache key, execution context, result
set-up) than the driver does, and for a small write that is most of its time: bench/RESULTS.md
has the callgrind counts that keep this module. Here a statement is compiled once per dialect, and
values pass through the same bind and result processors SQLAlchemy applies, so what is stored
and read back is identical; driver errors are raised as SQLAlchemy's own exceptions.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select
from sqlalchemy.types import TypeEngine
from sqlmodel import Session

from api.db import refuse_nul, write_lock

Processor = Callable[[Any], Any]
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
    returns: tuple[TypeEngine[Any], ...] | None  # the types of its rows; None: no rows
    # Their result processors, made at the first result: some (PostgreSQL's numerics) depend
    # on the type the driver describes the column with.
    results: list[tuple[Processor | None, ...]] = field(default_factory=list, compare=False)

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

    def rows(self, cursor: Any, dialect: Dialect) -> list[tuple[Any, ...]]:
        assert self.returns is not None
        if not self.results:
            described = (column[1] for column in cursor.description)
            self.results.append(
                tuple(
                    kind.dialect_impl(dialect).result_processor(dialect, code)
                    for kind, code in zip(self.returns, described, strict=True)
                )
            )
        processors = self.results[0]
        return [
            tuple(
                value if process is None or value is None else process(value)
                for value, process in zip(raw, processors, strict=True)
            )
            for raw in cursor.fetchall()
        ]


@lru_cache(maxsize=256)
def _compile(statement: Statement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or compiled.binds)
    processors = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    returned = list(statement.exported_columns)
    returns = None
    if isinstance(statement, Select) or returned:
        returns = tuple(column.type for column in returned)
    expanding = any(bind.expanding for bind in compiled.binds.values())
    return _Compiled(
        compiled, compiled.string, names, processors, dialect.positional, expanding, returns
    )


class DriverConnection:
    """A pooled connection that runs prebuilt Core statements on the DBAPI cursor itself.

    A statement is compiled once per dialect, and values pass through the same bind and result
    processors SQLAlchemy applies, so what is stored and read back is identical. Driver errors
    are raised as SQLAlchemy's own exceptions (IntegrityError, OperationalError, ...), a
    connection that lost its server is dropped from the pool, and the NUL rule applies to
    every statement. Like the engine's (`hide_parameters`), those exceptions never carry the
    statement's parameters: they reach logs.

    `execute(statement, values)` has the call shape of SQLAlchemy's Connection.execute (a list
    of value dicts: executemany) and returns the rows as tuples. Statements must be built once
    (module constants): the compiled form is cached by identity.
    """

    def __init__(self, connection: Any, dialect: Dialect, *, hide_parameters: bool = True) -> None:
        self._connection = connection
        self._cursor = connection.cursor()
        self.dialect = dialect
        self._hide_parameters = hide_parameters

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
        if compiled.returns is None:
            return []
        return compiled.rows(self._cursor, self.dialect)

    def _run(self, sql: str, rows: list[Any], *, many: bool) -> None:
        refuse_nul(rows)
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
            sql,
            params,
            error,
            self.dialect.loaded_dbapi.Error,
            hide_parameters=self._hide_parameters,
            dialect=self.dialect,
        )


@contextmanager
def driver_transaction(engine: Engine) -> Iterator[DriverConnection]:
    """One write transaction through DriverConnection; the block commits, and anything it
    leaves uncommitted is rolled back. Locks as write_transaction does: on SQLite, the
    process's write lock, then BEGIN IMMEDIATE."""
    lock = write_lock(engine)
    raw = engine.raw_connection()
    try:
        with lock:
            connection = DriverConnection(
                raw, engine.dialect, hide_parameters=engine.hide_parameters
            )
            try:
                if engine.dialect.name == "sqlite":
                    connection.begin_immediate()
                yield connection
            finally:
                if raw.is_valid:
                    raw.rollback()  # a no-op after a commit
    finally:
        raw.close()  # back to the pool


@contextmanager
def request_write(db: Session) -> Iterator[DriverConnection]:
    """driver_transaction for a request that has read through `db` (authentication): its read
    transaction ends first, which hands its connection back before the write takes one."""
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    if db.in_transaction():
        db.commit()
    with driver_transaction(engine) as connection:
        yield connection
