"""Migrations on this run's backend (SQLite or PostgreSQL; `make test` runs both).

Each test migrates its own fresh database, never the shared test database.
"""

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from alembic import command
from tests.conftest import ROOT


def _config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def _tables(database_url: str) -> set[str]:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _current_heads(database_url: str) -> set[str]:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def _differences(database_url: str) -> list[object]:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            # The same options as alembic/env.py, so this is what `alembic check` compares.
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(fresh_database_url: Callable[[], str]) -> None:
    url = fresh_database_url()
    config = _config(url)
    model_tables = set(SQLModel.metadata.tables)
    head = set(ScriptDirectory.from_config(config).get_heads())
    assert len(head) == 1, f"migrations must form one chain, found heads {head}"

    command.upgrade(config, "head")
    assert _tables(url) == {*model_tables, "alembic_version"}
    assert _current_heads(url) == head

    command.downgrade(config, "base")
    assert _tables(url) == {"alembic_version"}  # every table of the schema is gone
    assert _current_heads(url) == set()

    command.upgrade(config, "head")
    assert _tables(url) == {*model_tables, "alembic_version"}
    assert _current_heads(url) == head
    assert _differences(url) == []


def test_models_and_migrations_agree(fresh_database_url: Callable[[], str]) -> None:
    """Autogenerate against a database at head finds nothing to add, drop or alter."""
    url = fresh_database_url()
    command.upgrade(_config(url), "head")
    assert _differences(url) == []


def test_concurrent_migrators_on_postgresql(fresh_database_url: Callable[[], str]) -> None:
    """Several containers may run `releaselog serve` (migrate, then serve) at once: the
    advisory lock in alembic/env.py makes them take turns instead of colliding."""
    url = fresh_database_url()
    if not url.startswith("postgresql"):
        pytest.skip("concurrent migration is a PostgreSQL concern (runs in the PostgreSQL run)")
    env = {**os.environ, "DATABASE_URL": url}
    migrators = [
        subprocess.Popen(
            [sys.executable, "-m", "api.cli", "migrate"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = []
    try:
        for migrator in migrators:
            outputs.append(migrator.communicate(timeout=120)[0])
    finally:
        for migrator in migrators:
            migrator.kill()
            migrator.wait()
    assert [migrator.returncode for migrator in migrators] == [0, 0, 0], outputs
    assert _differences(url) == []
