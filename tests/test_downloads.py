"""Downloads against a real server: slow readers hold nothing, a download is a snapshot of
its start, it stops once access ends, and the FHIR export's memory is bounded by a batch.

The clients here are raw sockets with a tiny receive buffer, so the server really does wait
on them (a phone on a bad network, or an attacker, does the same); they run on this run's
database (SQLite, or PostgreSQL when TEST_DATABASE_URL says so).
"""

import re
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from models.catalog import REGIONS
from tests.factories import session_body
from tests.serverproc import ServerProcess, fresh_database

SESSIONS = 1200  # x 30 ratings: about 5 MB of CSV and 90 MB of FHIR, far beyond any buffer
BATCH_SESSIONS = 25  # the server's EXPORT_BATCH_SESSIONS: many batches per download
RATINGS = [
    {"region": region.slug, "side": side, "metric": metric, "before": 6, "after": 4}
    for region in REGIONS[:5]
    for side in ("left", "right")
    for metric in ("pain", "stiffness", "mobility")
]
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Person:
    def __init__(self, server: ServerProcess, name: str) -> None:
        self.email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        password = "correct horse battery staple"
        body = {"email": self.email, "password": password, "display_name": name}
        registered = httpx.post(f"{server.base_url}/v1/auth/register", json=body)
        assert registered.status_code == 201, registered.text
        self.id = registered.json()["id"]
        token = httpx.post(
            f"{server.base_url}/v1/auth/token", data={"username": self.email, "password": password}
        ).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("downloads")
    database_url, drop = fresh_database(directory)
    process = ServerProcess(
        database_url, directory / "server.log", EXPORT_BATCH_SESSIONS=str(BATCH_SESSIONS)
    )
    process.start()
    yield process
    process.stop()
    drop()


@pytest.fixture(scope="module")
def heavy(server: ServerProcess) -> Person:
    """A person with SESSIONS sessions of 30 ratings, in 2010."""
    person = Person(server, "Heavy")
    with httpx.Client(base_url=server.base_url, headers=person.headers, timeout=60) as http:
        for first in range(0, SESSIONS, 200):
            sessions = [
                session_body(
                    started_at=_started(index, timedelta(minutes=1)),
                    ended_at=None,
                    ratings=RATINGS,
                )
                for index in range(first, min(first + 200, SESSIONS))
            ]
            response = http.post("/v1/sessions/batch", json={"sessions": sessions})
            assert response.status_code == 200, response.text
            assert {item["status"] for item in response.json()["results"]} == {"created"}
    return person


def _started(index: int, step: timedelta) -> str:
    return (datetime(2010, 1, 1, 8, tzinfo=UTC) + index * step).isoformat()


def _stalled(server: ServerProcess, path: str, person: Person) -> socket.socket:
    """A GET whose client reads the status line and then nothing more."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.port))
    authorization = person.headers["Authorization"]
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: {authorization}\r\n\r\n".encode()
    )
    assert sock.recv(12) == b"HTTP/1.1 200"
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """The rest of a response, until the server closes the connection or ends the body."""
    received = bytearray()
    while not received.endswith(b"\r\n0\r\n\r\n"):
        try:
            chunk = sock.recv(1 << 16)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return bytes(received)


def _metric(server: ServerProcess, name: str) -> float:
    text = httpx.get(f"{server.base_url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} is not exposed")


def test_sixteen_downloads_that_never_read_leave_everyone_else_served(
    server: ServerProcess, heavy: Person
) -> None:
    stalled = [
        _stalled(server, path, heavy) for path in ["/v1/export.csv", "/v1/export.fhir.json"] * 8
    ]
    try:
        # Once every download has filled its client's buffers, nothing holds a turn at the
        # database while they wait on their clients.
        deadline = time.monotonic() + 20
        while _metric(server, "releaselog_db_turns_in_use") > 0:
            assert time.monotonic() < deadline, "the downloads still hold database turns"
            time.sleep(0.2)
        other = Person(server, "Other")
        with httpx.Client(base_url=server.base_url, headers=other.headers, timeout=10) as http:
            for method, path, body in [
                ("GET", "/v1/me", None),
                ("POST", "/v1/sessions", session_body()),
                ("GET", "/v1/summary", None),
                ("GET", "/v1/me", None),
            ]:
                started = time.monotonic()
                response = http.request(method, path, json=body)
                elapsed = time.monotonic() - started
                assert response.status_code in (200, 201), response.text
                assert elapsed < 2.0, f"{method} {path} took {elapsed:.1f} s"
        # The heavy person's own requests too.
        started = time.monotonic()
        response = httpx.get(f"{server.base_url}/v1/summary", headers=heavy.headers, timeout=10)
        assert response.status_code == 200
        assert time.monotonic() - started < 2.0
        # A stalled download resumes when its client reads again, and is complete.
        body = _read_all(stalled[0])
        assert body.endswith(b"\r\n0\r\n\r\n")
        assert len(set(UUID.findall(body))) == SESSIONS
    finally:
        for sock in stalled:
            sock.close()


def test_a_download_holds_the_sessions_that_existed_when_it_began(
    server: ServerProcess, heavy: Person
) -> None:
    download = _stalled(server, "/v1/export.csv", heavy)
    try:
        time.sleep(0.3)
        later = session_body(started_at="2011-01-01T00:00:00Z", ended_at=None)
        created = httpx.post(f"{server.base_url}/v1/sessions", json=later, headers=heavy.headers)
        assert created.status_code == 201
        body = _read_all(download)
    finally:
        download.close()
        httpx.delete(f"{server.base_url}/v1/sessions/{later['id']}", headers=heavy.headers)
    assert body.endswith(b"\r\n0\r\n\r\n")  # complete
    exported = set(UUID.findall(body))
    assert later["id"].encode() not in exported
    assert len(exported) == SESSIONS


def test_a_coach_download_stops_when_the_grant_is_revoked(
    server: ServerProcess, heavy: Person
) -> None:
    coach = Person(server, "Coach")
    invite = httpx.post(f"{server.base_url}/v1/invites", headers=coach.headers)
    grant = httpx.post(
        f"{server.base_url}/v1/grants", json={"code": invite.json()["code"]}, headers=heavy.headers
    )
    assert grant.status_code == 201
    download = _stalled(server, f"/v1/clients/{heavy.id}/export.csv", coach)
    try:
        time.sleep(0.3)
        revoked = httpx.delete(
            f"{server.base_url}/v1/grants/{grant.json()['id']}", headers=heavy.headers
        )
        assert revoked.status_code == 204
        later = session_body(started_at="2011-01-01T00:00:00Z", ended_at=None)
        created = httpx.post(f"{server.base_url}/v1/sessions", json=later, headers=heavy.headers)
        assert created.status_code == 201
        body = _read_all(download)
    finally:
        download.close()
        httpx.delete(f"{server.base_url}/v1/sessions/{later['id']}", headers=heavy.headers)
    # The connection was closed before the end of the body: no final chunk, and what arrived
    # is what was sent before the revocation, far from the whole history.
    assert not body.endswith(b"\r\n0\r\n\r\n")
    exported = set(UUID.findall(body))
    assert 0 < len(exported) < SESSIONS
    assert later["id"].encode() not in exported
    assert "download stopped" in server.log_path.read_text().lower()


def _resident_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(field)


def test_the_fhir_export_of_150000_ratings_grows_the_server_by_at_most_150_mib(
    tmp_path: Path,
) -> None:
    database_url, drop = fresh_database(tmp_path)
    process = ServerProcess(database_url, tmp_path / "server.log")  # the default batch size
    process.start()
    try:
        person = Person(process, "Decade")
        with httpx.Client(base_url=process.base_url, headers=person.headers, timeout=60) as http:
            for first in range(0, 5000, 250):
                sessions = [
                    session_body(
                        started_at=_started(index, timedelta(hours=12)),
                        ended_at=None,
                        ratings=RATINGS,
                    )
                    for index in range(first, first + 250)
                ]
                response = http.post("/v1/sessions/batch", json={"sessions": sessions})
                assert response.status_code == 200, response.text
            assert process.process is not None
            pid = process.process.pid
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets the peak (VmHWM)
            baseline = _resident_kib(pid, "VmRSS")
            observations, size, tail = 0, 0, b""
            with http.stream("GET", "/v1/export.fhir.json") as response:
                assert response.status_code == 200
                for chunk in response.iter_bytes():
                    window = tail + chunk
                    observations += window.count(b'"resourceType":"Observation"')
                    tail = window[-40:]
                    observations -= tail.count(b'"resourceType":"Observation"')
                    size += len(chunk)
            observations += tail.count(b'"resourceType":"Observation"')
            peak = _resident_kib(pid, "VmHWM")
    finally:
        process.stop()
        drop()
    assert observations == 5000 * 30 * 2
    assert size > 300 * 2**20
    assert (peak - baseline) / 1024 <= 150, f"grew by {(peak - baseline) / 1024:.0f} MiB"
