"""The API as a real process: uvicorn on a free port, against a database of its own.

Used by the tests that need a real server (contract fuzzing, crash safety, concurrency).
The database follows TEST_DATABASE_URL like the rest of the suite: unset, a SQLite file; a
PostgreSQL URL, a database created on that server for this process (dropped by `close`).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import create_postgres_database, migrate

ROOT = Path(__file__).resolve().parent.parent
SECRET = "server-process-secret-that-is-long-enough"


def is_postgres() -> bool:
    return os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


def fresh_database(directory: Path) -> tuple[str, Callable[[], None]]:
    """A new, migrated database and a function that drops it."""
    base = os.environ.get("TEST_DATABASE_URL", "")
    if base.startswith("postgresql"):
        database_url, drop = create_postgres_database(base)
    else:
        database_url = f"sqlite:///{directory / 'releaselog.db'}"

        def drop() -> None:
            return None

    migrate(database_url)
    return database_url, drop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`uvicorn api.main:app` in a child process; start, kill (SIGKILL) and restart it."""

    def __init__(self, database_url: str, log_path: Path, **env: str) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET,
            "LOGIN_LIMIT_PER_ADDRESS": "100000/minute",
            "REGISTER_LIMIT_PER_ADDRESS": "100000/minute",
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "WEBHOOK_WORKER_ENABLED": "false",
            "MAIL_WORKER_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the server did not come up in time")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing; like a crash or the OOM killer."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
