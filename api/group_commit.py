"""Group commit: many small writes of one kind in one transaction, with one commit."""

import asyncio
import contextvars
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from api.gate import DatabaseGate

logger = logging.getLogger("releaselog.db")

Item = TypeVar("Item")
Result = TypeVar("Result")


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

    `write(items)` writes a list of items in one transaction of its own, which it commits,
    and returns one result per item; it runs in a worker thread. An item submitted while a
    group is being written waits for it to finish; then everything that queued meanwhile is
    written as the next group: one turn at the database, one worker-thread hop, one `write`
    (a few statements for all the items instead of a few for each) and one commit. A lone
    item is a group of one, so nothing waits for company.

    An item is acknowledged only after the commit that holds it. When `write` raises for a
    group, nothing of it is committed and each item is written again alone, so only a
    failing item fails (with its own exception) and every other one commits as it would
    have alone. An item whose request is cancelled is still written with its group.

    `follow_up()`, when given, runs in a worker thread (in a turn of its own) `follow_up_delay`
    seconds after a group commits, once for all the groups that commit meanwhile, never in
    the path of a write: for upkeep the commits make due, such as a WAL checkpoint.
    """

    def __init__(
        self,
        gate: DatabaseGate,
        write: Callable[[list[Item]], list[Result]],
        *,
        max_group: int = 64,
        follow_up: Callable[[], object] | None = None,
        follow_up_delay: float = 0.1,
    ) -> None:
        self.gate = gate
        self.max_group = max_group
        self.follow_up_delay = follow_up_delay
        self._write = write
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
        """In a worker thread: the group in one write, or, when that fails, each item in a
        write of its own (in its request's context, for its log lines)."""
        if len(group) > 1:
            try:
                results = self._write([queued.item for queued in group])
            except Exception:  # each item is written again alone, and fails alone
                pass
            else:
                return [(True, result) for result in results]
        outcomes: list[tuple[bool, Any]] = []
        for queued in group:
            try:
                outcomes.append((True, queued.context.run(self._write, [queued.item])[0]))
            except Exception as error:  # handed to the item's caller
                outcomes.append((False, error))
        return outcomes
