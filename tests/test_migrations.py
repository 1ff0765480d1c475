"""Migrations on this run's backend (SQLite or PostgreSQL; `make test` runs both).

Each test migrates its own fresh database, never the shared test database.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from alembic import command
from models.base import UTCDateTime
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


# The tables as revision 0002 left them (only the columns these rows need).
_USER = sa.table(
    "user_account",
    *(sa.column(name) for name in ("email", "password_hash", "display_name", "timezone")),
    sa.column("id", sa.Uuid()),
    sa.column("created_at", UTCDateTime()),
    sa.column("feed_seq", sa.Integer()),
    sa.column("feed_purged_seq", sa.Integer()),
)
_SESSION = sa.table(
    "release_session",
    sa.column("id", sa.Uuid()),
    sa.column("user_id", sa.Uuid()),
    *(sa.column(name, UTCDateTime()) for name in ("started_at", "created_at", "updated_at")),
    sa.column("deleted_at", UTCDateTime()),
    sa.column("notes"),
    sa.column("complete", sa.Boolean()),
    sa.column("version", sa.Integer()),
    sa.column("change_seq", sa.Integer()),
    sa.column("create_hash"),
)
_WEBHOOK = sa.table(
    "webhook",
    sa.column("id", sa.Uuid()),
    sa.column("user_id", sa.Uuid()),
    *(sa.column(name) for name in ("url", "events", "secret")),
    sa.column("created_at", UTCDateTime()),
)
_DELIVERY = sa.table(
    "webhook_delivery",
    *(sa.column(name, sa.Uuid()) for name in ("id", "webhook_id", "client_id", "session_id")),
    *(sa.column(name) for name in ("event_type", "payload", "status")),
    sa.column("attempts", sa.Integer()),
    *(sa.column(name, UTCDateTime()) for name in ("next_attempt_at", "created_at", "updated_at")),
)


def test_0003_keeps_a_payload_only_while_it_may_be_sent(
    fresh_database_url: Callable[[], str],
) -> None:
    """Existing deliveries are brought to the rule: finished ones lose their payload, queued
    content events of sessions deleted since are withdrawn, the rest keep theirs; a downgrade
    restores a NOT NULL payload."""
    url = fresh_database_url()
    config = _config(url)
    command.upgrade(config, "0002")
    now = datetime.now(UTC)
    coach, client, hook = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    live, deleted = uuid.uuid4(), uuid.uuid4()
    rows = {  # delivery id -> (event type, session, status)
        uuid.uuid4(): ("session.created", live, "delivered"),
        uuid.uuid4(): ("session.created", live, "failed"),
        uuid.uuid4(): ("session.updated", live, "pending"),
        uuid.uuid4(): ("session.created", deleted, "pending"),
        uuid.uuid4(): ("session.deleted", deleted, "pending"),
    }
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            for user_id, email in ((coach, "coach@example.com"), (client, "client@example.com")):
                connection.execute(
                    sa.insert(_USER).values(
                        id=user_id,
                        email=email,
                        password_hash="x",
                        display_name="x",
                        timezone="UTC",
                        created_at=now,
                        feed_seq=2,
                        feed_purged_seq=0,
                    )
                )
            for seq, (session_id, deleted_at) in enumerate(((live, None), (deleted, now)), 1):
                connection.execute(
                    sa.insert(_SESSION).values(
                        id=session_id,
                        user_id=client,
                        started_at=now,
                        created_at=now,
                        updated_at=now,
                        deleted_at=deleted_at,
                        notes=None if deleted_at else "my notes",
                        complete=False,
                        version=1,
                        change_seq=seq,
                        create_hash="x",
                    )
                )
            connection.execute(
                sa.insert(_WEBHOOK).values(
                    id=hook,
                    user_id=coach,
                    url="https://d.example/h",
                    events="session.created session.updated session.deleted",
                    secret="x",
                    created_at=now,
                )
            )
            for delivery_id, (event_type, session_id, status) in rows.items():
                connection.execute(
                    sa.insert(_DELIVERY).values(
                        id=delivery_id,
                        webhook_id=hook,
                        client_id=client,
                        session_id=session_id,
                        event_type=event_type,
                        payload=f"body of {delivery_id}",
                        status=status,
                        attempts=1 if status != "pending" else 0,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )

        def stored() -> dict[uuid.UUID, tuple[str, str | None, int]]:
            with engine.connect() as connection:
                return {
                    delivery_id: (status, payload, attempts)
                    for delivery_id, status, payload, attempts in connection.execute(
                        sa.select(
                            _DELIVERY.c.id,
                            _DELIVERY.c.status,
                            _DELIVERY.c.payload,
                            _DELIVERY.c.attempts,
                        )
                    )
                }

        command.upgrade(config, "head")
        expected = {
            "delivered": ("delivered", None, 1),
            "failed": ("failed", None, 1),
        }
        after = stored()
        for delivery_id, (event_type, session_id, status) in rows.items():
            if status != "pending":
                assert after[delivery_id] == expected[status]
            elif session_id == deleted and event_type != "session.deleted":
                assert after[delivery_id] == ("failed", None, 0)  # withdrawn, never sent
            else:
                assert after[delivery_id] == ("pending", f"body of {delivery_id}", 0)

        command.downgrade(config, "0002")
        restored = stored()
        assert all(payload is not None for _status, payload, _attempts in restored.values())
        columns = inspect(engine).get_columns("webhook_delivery")
        nullable = {column["name"]: column["nullable"] for column in columns}
        assert nullable["payload"] is False
        command.upgrade(config, "head")
        assert _differences(url) == []
    finally:
        engine.dispose()


def test_0006_grant_ended_deliveries_outlive_the_client(
    fresh_database_url: Callable[[], str],
) -> None:
    """At 0006 a delivery needs no session and survives its client's account (grant.ended
    keeps the bare id); a downgrade removes what the older schema cannot hold: grant.ended
    deliveries, those of accounts gone, and the new event types in subscriptions."""
    url = fresh_database_url()
    config = _config(url)
    command.upgrade(config, "0005")
    now = datetime.now(UTC)
    coach, kept_client, erased_client, hook = (uuid.uuid4() for _ in range(4))
    engine = create_engine(url, poolclass=pool.NullPool)

    def delivery(client_id: uuid.UUID, event_type: str, session_id: uuid.UUID | None) -> dict:
        return {
            "id": uuid.uuid4(),
            "webhook_id": hook,
            "client_id": client_id,
            "session_id": session_id,
            "event_type": event_type,
            "payload": "{}",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }

    def delivered() -> set[tuple[uuid.UUID, str]]:
        with engine.connect() as connection:
            return {
                (client_id, event_type)
                for client_id, event_type in connection.execute(
                    sa.select(_DELIVERY.c.client_id, _DELIVERY.c.event_type)
                )
            }

    try:
        with engine.begin() as connection:
            for user_id in (coach, kept_client, erased_client):
                connection.execute(
                    sa.insert(_USER).values(
                        id=user_id,
                        email=f"{user_id}@example.com",
                        password_hash="x",
                        display_name="x",
                        timezone="UTC",
                        created_at=now,
                        feed_seq=0,
                        feed_purged_seq=0,
                    )
                )
            connection.execute(
                sa.insert(_WEBHOOK).values(
                    id=hook,
                    user_id=coach,
                    url="https://d.example/h",
                    events="session.deleted",
                    secret="x",
                    created_at=now,
                )
            )
            connection.execute(
                sa.insert(_DELIVERY).values(delivery(kept_client, "session.deleted", uuid.uuid4()))
            )

        command.upgrade(config, "head")
        with engine.begin() as connection:
            connection.execute(
                sa.update(_WEBHOOK).values(events="session.deleted session.flagged grant.ended")
            )
            for client_id in (kept_client, erased_client):
                ended = delivery(client_id, "grant.ended", None)
                connection.execute(sa.insert(_DELIVERY).values(ended))
            connection.execute(
                sa.insert(_DELIVERY).values(
                    delivery(erased_client, "session.deleted", uuid.uuid4())
                )
            )
            # No foreign key from the delivery to the client: their account may go.
            connection.execute(sa.delete(_USER).where(_USER.c.id == erased_client))
        assert delivered() == {
            (kept_client, "session.deleted"),
            (kept_client, "grant.ended"),
            (erased_client, "grant.ended"),
            (erased_client, "session.deleted"),
        }

        command.downgrade(config, "0005")
        assert delivered() == {(kept_client, "session.deleted")}
        with engine.connect() as connection:
            assert connection.execute(sa.select(_WEBHOOK.c.events)).scalar_one() == (
                "session.deleted"
            )
        columns = inspect(engine).get_columns("webhook_delivery")
        assert {c["name"]: c["nullable"] for c in columns}["session_id"] is False
        foreign_keys = inspect(engine).get_foreign_keys("webhook_delivery")
        assert {fk["referred_table"] for fk in foreign_keys} == {"webhook", "user_account"}

        command.upgrade(config, "head")
        assert _differences(url) == []
    finally:
        engine.dispose()


_RATING = sa.table(
    "rating",
    *(sa.column(name, sa.Uuid()) for name in ("session_id", "user_id")),
    sa.column("position", sa.Integer()),
    sa.column("started_at", UTCDateTime()),
    *(sa.column(name) for name in ("region", "side", "metric")),
    *(sa.column(name, sa.Float()) for name in ("before", "after")),
)


def test_0007_marks_the_sessions_already_worse(fresh_database_url: Callable[[], str]) -> None:
    """Sessions with a worse rating when 0007 runs are marked flagged (at their updated_at),
    so that a later write keeping them worse sends no session.flagged; the others are not."""
    url = fresh_database_url()
    config = _config(url)
    command.upgrade(config, "0006")
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    person = uuid.uuid4()
    # session -> its (metric, before, after) ratings; pain's and mobility's mcid_abs is 2,
    # rom's 5 (the catalog as of 0007).
    sessions = {
        "boundary": [("pain", 3.1, 5.1)],  # exactly -2 (2.0000000000000004 in floats)
        "rom": [("rom", 40.0, 35.0)],
        "mobility": [("pain", 5.0, 3.0), ("mobility", 6.0, 4.0)],
        "almost": [("pain", 3.1, 5.0), ("rom", 40.0, 35.1)],
        "better": [("pain", 6.2, 4.2)],
        "unfinished": [("pain", 3.0, None)],
    }
    ids = {name: uuid.uuid4() for name in sessions}
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.insert(_USER).values(
                    id=person,
                    email="p@example.com",
                    password_hash="x",
                    display_name="x",
                    timezone="UTC",
                    created_at=now,
                    feed_seq=len(sessions),
                    feed_purged_seq=0,
                )
            )
            for seq, (name, ratings) in enumerate(sessions.items(), 1):
                connection.execute(
                    sa.insert(_SESSION).values(
                        id=ids[name],
                        user_id=person,
                        started_at=now,
                        created_at=now,
                        updated_at=now,
                        deleted_at=None,
                        notes=None,
                        complete=all(after is not None for _m, _b, after in ratings),
                        version=1,
                        change_seq=seq,
                        create_hash="x",
                    )
                )
                for position, (metric, before, after) in enumerate(ratings):
                    connection.execute(
                        sa.insert(_RATING).values(
                            session_id=ids[name],
                            user_id=person,
                            position=position,
                            started_at=now,
                            region="adductors",
                            side="both",
                            metric=metric,
                            before=before,
                            after=after,
                        )
                    )

        command.upgrade(config, "0007")
        flagged_at = sa.table(
            "release_session", sa.column("id", sa.Uuid()), sa.column("flagged_at", UTCDateTime())
        )
        with engine.connect() as connection:
            rows = connection.execute(sa.select(flagged_at.c.id, flagged_at.c.flagged_at)).all()
            marked = {row[0]: row[1] for row in rows}
        assert {name for name, session_id in ids.items() if marked[session_id] is not None} == {
            "boundary",
            "rom",
            "mobility",
        }
        assert marked[ids["boundary"]] == now

        command.downgrade(config, "0006")
        assert "flagged_at" not in {
            c["name"] for c in inspect(engine).get_columns("release_session")
        }
        command.upgrade(config, "head")
        assert _differences(url) == []
    finally:
        engine.dispose()
