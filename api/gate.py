"""The gate: requests wait here, on the event loop, for their turn at the database."""

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import make_url

from api.config import Settings
from api.errors import ServiceUnavailable
from api.metrics import DB_TURN_TIMEOUTS, DB_TURN_WAIT, DB_TURNS, DB_TURNS_IN_USE, DB_TURNS_WAITING


class LoopSemaphore:
    """An asyncio.Semaphore of `size` for each event loop that asks: asyncio primitives belong
    to one loop, and tests run the app on several."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._semaphores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()

    def get(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.size)
        return semaphore


class DatabaseGate:
    """Requests wait here, on the event loop, for their turn at the database.

    Without it, a request waiting for the database (a pool connection, or SQLite's write lock,
    which every transaction takes) waits inside a worker thread. When every worker is waiting
    like that, the request that holds the database cannot get a worker to finish and release
    it: 50 concurrent requests stalled until the busy timeout answered "database is locked".
    Waiting here holds no worker, so the holder always finishes.

    A wait is bounded: after `wait_timeout` seconds the request gets a 503 with
    `Retry-After` rather than hanging. Occupancy and waits are Prometheus metrics
    (`releaselog_db_turns*`), not part of `/readyz`: a busy process is still ready, and a
    readiness probe that flapped under load would pull every process out of rotation at once.
    """

    def __init__(self, size: int, wait_timeout: float = 10.0) -> None:
        self.size = size
        self.wait_timeout = wait_timeout
        DB_TURNS.set(size)
        # The threads of the group writes (api/group_commit.py): one per turn, so a write never
        # queues for a thread; started when first needed.
        self.writers = ThreadPoolExecutor(size, thread_name_prefix="releaselog-write")
        self._semaphore = LoopSemaphore(size)

    def semaphore(self) -> asyncio.Semaphore:
        return self._semaphore.get()

    @asynccontextmanager
    async def turn(self, scope: MutableMapping[str, Any]) -> AsyncIterator[None]:
        """The request's turn (`scope`: its ASGI scope). Re-entrant: a request that already
        holds its turn does not wait for a second one, which could deadlock when every turn
        is held by a request waiting like that."""
        if scope.get(_TURN_HELD):
            yield
            return
        semaphore = self.semaphore()
        if semaphore.locked():
            await self._wait(semaphore)
        else:
            await semaphore.acquire()  # free: does not suspend
        DB_TURNS_IN_USE.inc()
        scope[_TURN_HELD] = True
        try:
            yield
        finally:
            scope[_TURN_HELD] = False
            DB_TURNS_IN_USE.dec()
            semaphore.release()

    async def _wait(self, semaphore: asyncio.Semaphore) -> None:
        """Queue for a turn, at most `wait_timeout` seconds (then 503)."""
        DB_TURNS_WAITING.inc()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.wait_timeout):
                await semaphore.acquire()
        except TimeoutError:
            DB_TURN_TIMEOUTS.inc()
            raise ServiceUnavailable(
                "The database is busy. Try again shortly.", headers={"Retry-After": "1"}
            ) from None
        finally:
            DB_TURNS_WAITING.dec()
            DB_TURN_WAIT.observe(time.perf_counter() - started)


_TURN_HELD = "releaselog.database_turn"


SQLITE_CONCURRENT_REQUESTS = 4


def database_gate(settings: Settings) -> DatabaseGate:
    """As many requests as the pool has connections (PostgreSQL).

    SQLite runs one writer at a time, so a few requests at once keep it busy; more only make
    worker threads fight over the GIL while they queue for the write lock (bench/RESULTS.md
    compares 4 with 30). Writers queue on the process's write lock inside their worker
    thread, which they hold until they finish.
    """
    if make_url(settings.database_url).get_backend_name() == "sqlite":
        size = min(SQLITE_CONCURRENT_REQUESTS, settings.db_pool_size)
    else:
        size = settings.db_pool_size + settings.db_max_overflow
    return DatabaseGate(size, settings.db_turn_timeout_seconds)
