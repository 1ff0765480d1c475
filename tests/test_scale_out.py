"""Scale-out: two real API processes on one PostgreSQL database and one Redis share everything.

It runs once per `make test`, in the PostgreSQL run (TEST_DATABASE_URL=postgresql...): the
processes get their own freshly created and migrated database on that server. Redis comes from
TEST_REDIS_URL (default redis://127.0.0.1:6379/15); the login counters are keyed by account
email, and every email here is new, so runs never see each other's counters. Without Redis the
test is skipped, except under CI=true, where it fails.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import ROOT, TEST_SECRET, create_postgres_database, migrate
from tests.factories import session_body

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
LIMIT_PER_ACCOUNT = 3
STARTUP_SECONDS = 60


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the scale-out test must run)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ApiProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "api.main:app"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--log-level", "warning", "--no-access-log"),
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_up(self, client: httpx.Client) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if client.get(f"{self.base_url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"API on port {self.port} did not come up:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="module")
def two_apis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        pytest.skip("scale-out runs once, in the PostgreSQL run (TEST_DATABASE_URL=postgresql...)")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as error:
        _unavailable(f"Redis at {REDIS_URL} is not reachable: {error}")
    database_url, drop_database = create_postgres_database(base)
    apis: list[ApiProcess] = []
    try:
        migrate(database_url)
        tmp_path = tmp_path_factory.mktemp("scale-out")
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": TEST_SECRET,
            "RATE_LIMIT_STORAGE_URL": REDIS_URL,
            "LOGIN_LIMIT_PER_ACCOUNT": f"{LIMIT_PER_ACCOUNT}/hour",
            "LOGIN_LIMIT_PER_ADDRESS": "100000/hour",
            "REGISTER_LIMIT_PER_ADDRESS": "100000/hour",
            "DB_POOL_SIZE": "2",
            "DB_MAX_OVERFLOW": "2",
            "WEBHOOK_WORKER_ENABLED": "false",
            "MAIL_WORKER_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
        }
        for n in (1, 2):
            apis.append(ApiProcess(env, tmp_path / f"api-{n}.log"))
        with httpx.Client(timeout=10) as client:
            for api in apis:
                api.wait_until_up(client)
        yield apis[0].base_url, apis[1].base_url
    finally:
        for api in apis:
            api.stop()
        drop_database()


def _register(client: httpx.Client, base_url: str) -> tuple[str, str]:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    password = "correct horse battery"
    response = client.post(
        f"{base_url}/v1/auth/register",
        json={"email": email, "password": password, "display_name": "Scale"},
    )
    assert response.status_code == 201, response.text
    return email, password


def _login(client: httpx.Client, base_url: str, email: str, password: str) -> httpx.Response:
    return client.post(f"{base_url}/v1/auth/token", data={"username": email, "password": password})


def test_a_session_written_through_one_process_is_read_through_the_other(
    two_apis: tuple[str, str],
) -> None:
    first, second = two_apis
    with httpx.Client(timeout=10) as client:
        email, password = _register(client, first)
        token = _login(client, second, email, password)  # the account is there too
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

        body = session_body()
        created = client.post(f"{first}/v1/sessions", json=body, headers=headers)
        assert created.status_code == 201, created.text

        read = client.get(f"{second}/v1/sessions/{body['id']}", headers=headers)
        assert read.status_code == 200, read.text
        assert read.json() == created.json()

        other = session_body()
        assert client.post(f"{second}/v1/sessions", json=other, headers=headers).status_code == 201
        listed = client.get(f"{first}/v1/sessions", headers=headers)
        assert listed.status_code == 200, listed.text
        assert {item["id"] for item in listed.json()["items"]} == {body["id"], other["id"]}


def test_the_login_limit_holds_across_processes(two_apis: tuple[str, str]) -> None:
    first, second = two_apis
    with httpx.Client(timeout=10) as client:
        email, password = _register(client, first)
        # LIMIT_PER_ACCOUNT = 3 attempts, split 2 + 1 over the processes: each is allowed.
        for base_url in (first, second, first):
            assert _login(client, base_url, email, "wrong password").status_code == 401
        # The 4th attempt is the second on `second`: a per-process counter would be at 2 < 3
        # and let it through; the shared one is at 4 > 3.
        refused = _login(client, second, email, "wrong password")
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["status"] == 429
        assert int(refused.headers["Retry-After"]) >= 1
        # Both processes now refuse, even the right password.
        for base_url in (first, second):
            response = _login(client, base_url, email, password)
            assert response.status_code == 429, response.text
            assert int(response.headers["Retry-After"]) >= 1
