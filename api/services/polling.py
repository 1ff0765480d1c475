"""The background workers' loop (webhook deliveries, emails): one daemon thread per worker."""

import logging
import threading
from collections.abc import Callable

from api.logs import redacted_traceback

logger = logging.getLogger("releaselog.workers")


class PollingWorker:
    """Runs `work()` (one round; returns how many items it handled) in a thread until stopped:
    the next round at once while there is work, after `poll_seconds` when there was none."""

    def __init__(
        self, name: str, work: Callable[[], int], poll_seconds: float, stop_timeout: float
    ) -> None:
        self.name = name
        self._work = work
        self._poll_seconds = poll_seconds
        self._stop_timeout = stop_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round. An attempt still in flight keeps its lease and is
        retried when it expires, by this process after a restart or by another one."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._stop_timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._work() > 0
            except Exception as error:
                # The type and frames only: an exception's message may quote an address.
                logger.error(
                    "%s round failed (%s); retrying",
                    self.name,
                    type(error).__name__,
                    extra={"exception": redacted_traceback(error)},
                )
                busy = False
            if not busy:
                self._stop.wait(self._poll_seconds)
