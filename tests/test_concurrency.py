"""Concurrency against a real server process: retried creates, racing PATCHes, many writers.

Real threads send real HTTP requests at once (a barrier releases them together), so the
requests overlap inside the server's thread pool and contend for the database: the SQLite
write lock (BEGIN IMMEDIATE + busy timeout, api/db.py) or PostgreSQL row locks.
"""

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import session_body
from serverproc import ServerProcess, fresh_database

CALLERS = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("concurrency")
    database_url, drop = fresh_database(directory)
    process = ServerProcess(database_url, directory / "server.log")
    process.start()
    yield process
    process.stop()
    drop()


def _headers(server: ServerProcess) -> dict[str, str]:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery staple"
    body = {"email": email, "password": password, "display_name": "Racer"}
    assert httpx.post(f"{server.base_url}/v1/auth/register", json=body).status_code == 201
    token = httpx.post(
        f"{server.base_url}/v1/auth/token", data={"username": email, "password": password}
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _all_at_once(count: int, call: Callable[[httpx.Client, int], httpx.Response], base_url: str):  # type: ignore[no-untyped-def]
    """Run `call` on `count` threads released together; the responses in thread order."""
    barrier = threading.Barrier(count)

    def run(index: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            barrier.wait()
            return call(http, index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _no_server_errors(responses: list[httpx.Response]) -> None:
    for response in responses:
        assert response.status_code < 500, response.text
        assert "locked" not in response.text.lower(), response.text


def test_concurrent_identical_creates_store_one_session(server: ServerProcess) -> None:
    headers = _headers(server)
    body = session_body()

    responses = _all_at_once(
        CALLERS,
        lambda http, _: http.post("/v1/sessions", json=body, headers=headers),
        server.base_url,
    )

    _no_server_errors(responses)
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 201}
    assert statuses.count(201) == 1
    bodies = [response.json() for response in responses]
    assert all(stored == bodies[0] for stored in bodies)
    listed = httpx.get(f"{server.base_url}/v1/sessions", headers=headers).json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]


def test_concurrent_patches_with_one_etag_let_exactly_one_win(server: ServerProcess) -> None:
    headers = _headers(server)
    body = session_body()
    created = httpx.post(f"{server.base_url}/v1/sessions", json=body, headers=headers)
    assert created.status_code == 201
    etag = created.headers["ETag"]

    def patch(http: httpx.Client, index: int) -> httpx.Response:
        return http.patch(
            f"/v1/sessions/{body['id']}",
            json={"notes": f"writer {index}"},
            headers={**headers, "If-Match": etag},
        )

    responses = _all_at_once(CALLERS, patch, server.base_url)

    _no_server_errors(responses)
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 1
    assert statuses.count(412) == CALLERS - 1
    winner = statuses.index(200)
    stored = httpx.get(f"{server.base_url}/v1/sessions/{body['id']}", headers=headers).json()
    assert stored["version"] == 2  # 1 at creation + exactly one applied change
    assert stored["notes"] == f"writer {winner}"


def test_many_writers_never_see_database_is_locked(server: ServerProcess) -> None:
    people = [_headers(server) for _ in range(5)]
    bodies: list[dict[str, Any]] = [session_body() for _ in range(CALLERS)]

    responses = _all_at_once(
        CALLERS,
        lambda http, index: http.post(
            "/v1/sessions", json=bodies[index], headers=people[index % len(people)]
        ),
        server.base_url,
    )

    _no_server_errors(responses)
    assert [response.status_code for response in responses] == [201] * CALLERS
    for index, headers in enumerate(people):
        listed = httpx.get(
            f"{server.base_url}/v1/sessions", params={"limit": 200}, headers=headers
        ).json()["items"]
        expected = {bodies[i]["id"] for i in range(index, CALLERS, len(people))}
        assert {item["id"] for item in listed} == expected  # 50 / 5 = 10 each


def test_the_server_log_has_no_lock_errors(server: ServerProcess) -> None:
    log = Path(server.log_path).read_text()
    assert "database is locked" not in log
    assert "Traceback" not in log


# --- two processes, one database ------------------------------------------------------------

IDS = 20
COPIES = 8  # of each create, half through each process
PRIVATE_NOTE = "two-process canary: right calf cramps at night"


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Two API processes on one database (SQLite: one file; PostgreSQL: one database)."""
    directory = tmp_path_factory.mktemp("two-processes")
    database_url, drop = fresh_database(directory)
    # Small pools: 2 processes x 6 connections, beside whatever else the server is serving.
    env = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2", "LOG_LEVEL": "DEBUG"}
    servers = [ServerProcess(database_url, directory / f"server-{n}.log", **env) for n in (1, 2)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()
        drop()


def test_identical_creates_through_two_processes_answer_201_once_then_200(
    two_servers: list[ServerProcess],
) -> None:
    """An app retrying a create through a load balancer: its copies reach both processes at
    once, and every copy but the first is the replay (200, the stored session), never a 500.
    Several people at once, so that groups of creates hold several account rows."""
    people = [_headers(two_servers[0]) for _ in range(4)]
    bodies = [session_body(notes=f"{PRIVATE_NOTE} #{n}") for n in range(IDS)]

    def create(http: httpx.Client, index: int) -> httpx.Response:
        number = index // COPIES
        server = two_servers[index % 2]
        return http.post(
            f"{server.base_url}/v1/sessions",
            json=bodies[number],
            headers=people[number % len(people)],
        )

    responses = _all_at_once(IDS * COPIES, create, two_servers[0].base_url)

    _no_server_errors(responses)
    for number, body in enumerate(bodies):
        copies = responses[number * COPIES : (number + 1) * COPIES]
        statuses = sorted(response.status_code for response in copies)
        assert statuses == [200] * (COPIES - 1) + [201], (body["id"], statuses)
        stored = [response.json() for response in copies]
        assert all(document == stored[0] for document in stored)
        assert stored[0]["id"] == body["id"]
        assert stored[0]["notes"] == body["notes"]
    for index, headers in enumerate(people):
        listed = httpx.get(
            f"{two_servers[1].base_url}/v1/sessions", params={"limit": 200}, headers=headers
        ).json()["items"]
        expected = {bodies[n]["id"] for n in range(index, IDS, len(people))}
        assert {item["id"] for item in listed} == expected
    for server in two_servers:
        log = Path(server.log_path).read_text()
        assert "Traceback" not in log
        assert PRIVATE_NOTE not in log
