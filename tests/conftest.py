"""Test fixtures: the real app against a real, freshly migrated database per test run.

TEST_DATABASE_URL selects the backend: unset, a SQLite file in a temporary directory; a
PostgreSQL URL, a database created for this run (and dropped afterwards) on that server.
"""

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.config import Config
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from alembic import command
from api.config import Settings
from api.main import create_app
from api.state import app_state

logging.getLogger("httpx").setLevel(logging.WARNING)

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"


def create_postgres_database(base_url: str) -> tuple[str, Callable[[], None]]:
    url = make_url(base_url)
    name = f"releaselog_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL", "")
    if base.startswith("postgresql"):
        url, drop = create_postgres_database(base)
        yield url
        drop()
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'releaselog.db'}"


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes empty databases on this run's backend, apart from `database_url`; dropped after."""
    drops: list[Callable[[], None]] = []

    def make() -> str:
        base = os.environ.get("TEST_DATABASE_URL", "")
        if base.startswith("postgresql"):
            url, drop = create_postgres_database(base)
            drops.append(drop)
            return url
        return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:12]}.db'}"

    yield make
    for drop in drops:
        drop()


def migrate(database_url: str, revision: str = "head") -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "login_limit_per_account": "10/minute",
        "login_limit_per_address": "1000/minute",
        "register_limit_per_address": "1000/minute",
        "webhook_allow_private_targets": True,
        "webhook_worker_enabled": False,
        "mail_worker_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    migrate(database_url)
    return make_settings(database_url)


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts from empty tables (only when it uses the app)."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    app_state(app).login_limiter.reset()
    engine = app_state(app).engine
    with engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Person:
    id: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_person(client: TestClient) -> Callable[..., Person]:
    def make(display_name: str = "Alex", timezone: str = "UTC") -> Person:
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery"
        response = client.post(
            "/v1/auth/register",
            json={
                "email": email,
                "password": password,
                "display_name": display_name,
                "timezone": timezone,
            },
        )
        assert response.status_code == 201, response.text
        token = client.post("/v1/auth/token", data={"username": email, "password": password})
        assert token.status_code == 200, token.text
        return Person(response.json()["id"], email, password, token.json()["access_token"])

    return make


@pytest.fixture
def alice(make_person: Callable[..., Person]) -> Person:
    return make_person("Alice")


@pytest.fixture
def bob(make_person: Callable[..., Person]) -> Person:
    return make_person("Bob")
