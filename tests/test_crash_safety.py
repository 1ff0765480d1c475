"""Crash safety: SIGKILL the server mid-stream; every acknowledged write is still there.

Why an acknowledged write survives: a service commits before the route answers, so a 2xx
means COMMIT has returned. On SQLite (WAL mode) COMMIT returns only after the transaction's
frames have been written to the `-wal` file. A killed process loses nothing that write() has
handed to the kernel, and the next connection replays the WAL, so with the default
`SQLITE_SYNCHRONOUS=NORMAL` a process crash cannot lose an acknowledged write. `FULL` also
fsyncs the WAL at every commit, which extends that to an operating-system crash or a power
cut (this test cannot simulate those) at the price of write throughput.
On PostgreSQL the server's own WAL gives the same guarantee; the test then checks that the
API process dying mid-transaction leaves nothing half-written (no session without ratings).
"""

import sqlite3
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from factories import session_body
from fastapi import FastAPI
from serverproc import ServerProcess, fresh_database, is_postgres
from sqlalchemy import create_engine, text

from api.state import app_state

WRITERS = 4
ACKNOWLEDGED_BEFORE_KILL = 40


def _token(base_url: str) -> str:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery staple"
    body = {"email": email, "password": password, "display_name": "Crash"}
    assert httpx.post(f"{base_url}/v1/auth/register", json=body).status_code == 201
    answer = httpx.post(f"{base_url}/v1/auth/token", data={"username": email, "password": password})
    return str(answer.json()["access_token"])


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    database_url, drop = fresh_database(tmp_path)
    server = ServerProcess(database_url, tmp_path / "server.log")
    server.start()
    headers = {"Authorization": f"Bearer {_token(server.base_url)}"}
    # session id -> the highest version the server acknowledged for it
    acknowledged: dict[str, int] = {}
    lock = threading.Lock()
    enough = threading.Event()

    def write_until_the_server_dies() -> None:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
            while True:
                body = session_body(notes="written before the crash")
                try:
                    created = http.post("/v1/sessions", json=body)
                    if created.status_code not in (200, 201):
                        raise AssertionError(created.text)
                    with lock:
                        acknowledged[body["id"]] = 1
                    patched = http.patch(
                        f"/v1/sessions/{body['id']}", json={"notes": "patched before the crash"}
                    )
                    assert patched.status_code == 200, patched.text
                    with lock:
                        acknowledged[body["id"]] = patched.json()["version"]
                        if len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL:
                            enough.set()
                except httpx.TransportError:
                    return  # the server is gone; what was in flight has no answer

    writers = [threading.Thread(target=write_until_the_server_dies) for _ in range(WRITERS)]
    try:
        for writer in writers:
            writer.start()
        assert enough.wait(timeout=120), "the writers never got going"
        server.kill()  # while the writers are still sending
        for writer in writers:
            writer.join(timeout=60)
        assert not any(writer.is_alive() for writer in writers)

        server.start()
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
            for session_id, version in acknowledged.items():
                stored = http.get(f"/v1/sessions/{session_id}")
                assert stored.status_code == 200, (session_id, stored.text)
                assert stored.json()["version"] >= version
                assert len(stored.json()["ratings"]) == 2
        server.stop()

        engine = create_engine(database_url)
        with engine.connect() as connection:
            # A session row never outlives its ratings: each write was all or nothing.
            orphans = connection.execute(
                text(
                    "SELECT count(*) FROM release_session AS s WHERE s.deleted_at IS NULL "
                    "AND NOT EXISTS (SELECT 1 FROM rating AS r WHERE r.session_id = s.id)"
                )
            ).scalar_one()
            assert orphans == 0
        engine.dispose()
        if not is_postgres():
            path = database_url.removeprefix("sqlite:///")
            with sqlite3.connect(path) as connection:
                assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        server.stop()
        drop()


def test_sqlite_connections_use_wal_and_the_configured_synchronous(app: FastAPI) -> None:
    if app_state(app).engine.dialect.name != "sqlite":
        pytest.skip("a SQLite setting")
    with app_state(app).engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15_000
