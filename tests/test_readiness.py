"""/readyz follows the database: 503 problem+json while it is unreachable, 200 again once it is
back, without restarting the app (pool_pre_ping drops the dead pooled connections).

On PostgreSQL the app talks to the server through a TCP proxy that the test stops and restarts;
on SQLite the database file's directory is missing, then created.
"""

import contextlib
import socket
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.main import create_app
from api.state import app_state
from tests.conftest import make_settings


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; stop() refuses new connections and cuts open ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.2)  # so that accept() notices stop()
        self._listener = listener
        self._stopping.clear()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


def _assert_unready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 503


def _assert_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


def test_readyz_follows_postgresql_through_a_proxy(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL readiness runs in the PostgreSQL run (TEST_DATABASE_URL)")
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = create_app(make_settings(proxied, db_pool_size=2, db_connect_timeout_seconds=2))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            _assert_ready(client)  # leaves a pooled connection through the proxy

            proxy.stop()  # the pooled connection is cut and new ones are refused
            _assert_unready(client)
            _assert_unready(client)
            assert client.get("/healthz").status_code == 200  # the process itself is fine

            proxy.start()
            _assert_ready(client)
            _assert_ready(client)
    finally:
        app_state(app).engine.dispose()
        proxy.stop()


def test_readyz_follows_sqlite(database_url: str, tmp_path: Path) -> None:
    if make_url(database_url).get_backend_name() != "sqlite":
        pytest.skip("SQLite readiness runs in the SQLite run")
    directory = tmp_path / "not-yet"
    app = create_app(make_settings(f"sqlite:///{directory / 'releaselog.db'}"))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            _assert_unready(client)  # the file cannot be opened: its directory is missing
            directory.mkdir()
            _assert_ready(client)
    finally:
        app_state(app).engine.dispose()


def test_readyz_gives_up_on_a_server_that_never_answers() -> None:
    """A server that accepts TCP but never speaks: the connect timeout turns it into a 503."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nobody ever reads or answers
        port = silent.getsockname()[1]
        settings = make_settings(
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/releaselog",
            db_connect_timeout_seconds=2,
        )
        app = create_app(settings)
        try:
            with TestClient(app, raise_server_exceptions=False) as client:
                _assert_unready(client)
        finally:
            app_state(app).engine.dispose()
