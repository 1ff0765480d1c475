"""The database layer's own guarantees: a write transaction keeps only what it commits, no
statement stores NUL, the driver-level writes store exactly what SQLAlchemy would and fail as
SQLAlchemy would, a request's database turn cannot deadlock itself, and writes that share
a commit (GroupCommit) succeed and fail exactly as they would alone."""

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import String, insert, literal_column, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from api.db import create_db_engine, wal_checkpoint, write_transaction
from api.driver import driver_transaction
from api.errors import BadRequest, ServiceUnavailable, Unauthorized
from api.gate import DatabaseGate
from api.group_commit import GroupCommit
from api.main import create_app
from api.services import accounts
from api.services.sessions import IdTaken, NewSession, create_sessions, new_session
from api.state import app_state
from models.release_session import SESSION_TABLE, SessionCreate
from models.user import User
from tests.conftest import Person, make_settings, migrate
from tests.factories import session_body
from tests.webhook_support import grant


def test_a_write_transaction_keeps_only_what_its_block_commits(app: FastAPI, alice: Person) -> None:
    engine = app_state(app).engine
    owner = uuid.UUID(alice.id)
    with Session(engine) as db, write_transaction(db) as connection:
        connection.execute(update(User).where(User.id == owner).values(display_name="Uncommitted"))
    with Session(engine) as db:
        with contextlib.suppress(RuntimeError), write_transaction(db) as connection:
            connection.execute(update(User).where(User.id == owner).values(display_name="Failed"))
            raise RuntimeError
        with write_transaction(db) as connection:
            connection.execute(update(User).where(User.id == owner).values(display_name="Kept"))
            db.commit()
    with Session(engine) as db:
        assert db.get(User, owner).display_name == "Kept"


def test_no_statement_can_store_a_nul_character(app: FastAPI, alice: Person) -> None:
    owner = uuid.UUID(alice.id)
    with Session(app_state(app).engine) as db, write_transaction(db) as connection:
        with pytest.raises(BadRequest):
            connection.execute(update(User).where(User.id == owner).values(display_name="a\x00b"))


_INSERT = insert(SESSION_TABLE)


def _row(owner: str, **overrides: object) -> dict[str, object]:
    moment = datetime(2026, 11, 20, 6, 30, 0, 123456, tzinfo=UTC)
    row: dict[str, object] = {
        "id": uuid.uuid4(),
        "user_id": uuid.UUID(owner),
        "started_at": moment,
        "ended_at": None,
        "tool": "foam_roller",
        "water_before_ml": 400.0,
        "water_after_ml": 350.5,
        "felt_unwell_after": False,
        "notes": "left side tender",
        "complete": True,
        "version": 1,
        "created_at": moment,
        "updated_at": moment,
        "deleted_at": None,
        "change_seq": 0,
        "create_hash": "f" * 64,
        "flagged_at": None,
    }
    row.update(overrides)
    return row


def _stored_rows(app: FastAPI) -> list[dict[str, object]]:
    """Every session as the database holds it (the driver's own values, no SQLAlchemy types),
    in feed order, without the columns that differ by design."""
    with app_state(app).engine.connect() as connection:
        raw = connection.exec_driver_sql("SELECT * FROM release_session ORDER BY change_seq")
        return [
            {key: value for key, value in row.items() if key not in ("id", "change_seq")}
            for row in raw.mappings()
        ]


def test_a_driver_write_stores_exactly_what_sqlalchemy_stores(app: FastAPI, alice: Person) -> None:
    by_driver, by_sqlalchemy = _row(alice.id, change_seq=1), _row(alice.id, change_seq=2)
    with driver_transaction(app_state(app).engine) as connection:
        assert connection.execute(_INSERT, by_driver) == []
        connection.commit()
    with app_state(app).engine.begin() as connection:
        connection.execute(_INSERT, by_sqlalchemy)

    driver_row, sqlalchemy_row = _stored_rows(app)
    assert driver_row == sqlalchemy_row
    # ... and reads come back through SQLAlchemy's result processors as the same values.
    with driver_transaction(app_state(app).engine) as connection:
        found = connection.execute(
            select(SESSION_TABLE.c.id, SESSION_TABLE.c.started_at).where(
                SESSION_TABLE.c.id.in_([by_driver["id"]])
            ),
            {},
        )
    assert found == [(by_driver["id"], by_driver["started_at"])]


def test_a_driver_write_fails_as_sqlalchemy_and_leaves_nothing(app: FastAPI, alice: Person) -> None:
    first = _row(alice.id, change_seq=1)
    with pytest.raises(IntegrityError), driver_transaction(app_state(app).engine) as connection:
        connection.execute(_INSERT, [_row(alice.id, change_seq=2), first, first])
    with pytest.raises(BadRequest), driver_transaction(app_state(app).engine) as connection:
        connection.execute(_INSERT, _row(alice.id, notes="nul \x00 inside", change_seq=3))
    with driver_transaction(app_state(app).engine) as connection:
        assert connection.execute(select(SESSION_TABLE.c.id), {}) == []


def test_database_errors_carry_no_parameters(app: FastAPI, alice: Person) -> None:
    """Their messages reach logs: neither the driver's nor the ORM's quote a row's values."""
    note = "private: " + uuid.uuid4().hex
    row = _row(alice.id, notes=note, change_seq=1)
    engine = app_state(app).engine
    with pytest.raises(IntegrityError) as by_driver, driver_transaction(engine) as connection:
        connection.execute(_INSERT, [row, row])
    with pytest.raises(IntegrityError) as by_sqlalchemy, engine.begin() as connection:
        connection.execute(_INSERT, [row, row])

    assert engine.hide_parameters
    for error in (by_driver.value, by_sqlalchemy.value):
        assert note not in str(error)
        assert "SQL parameters hidden" in str(error)


_ISOLATION_LEVEL = select(literal_column("current_setting('transaction_isolation')", String))


def test_postgresql_transactions_are_read_committed_whatever_the_server_default(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's isolation levels")
    serializable = make_url(database_url).update_query_dict(
        {"options": "-c default_transaction_isolation=serializable"}
    )
    settings = make_settings(
        serializable.render_as_string(hide_password=False), db_statement_timeout_ms=0
    )
    engine = create_db_engine(settings)
    try:
        with driver_transaction(engine) as connection:
            (level,) = connection.execute(_ISOLATION_LEVEL, {})
        with engine.connect() as orm_connection:
            orm_level = orm_connection.exec_driver_sql("SHOW transaction_isolation").scalar()
    finally:
        engine.dispose()

    assert level == ("read committed",)
    assert orm_level == "read committed"


def test_a_request_holding_its_turn_never_waits_for_a_second() -> None:
    async def scenario() -> None:
        gate = DatabaseGate(1)
        first: dict[str, object] = {}
        other: dict[str, object] = {}
        async with gate.turn(first):
            async with gate.turn(first):  # the same request again: no wait
                pass
            # Another request waits while the only turn is held ...
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(_take(gate, other), 0.05)
        # ... and gets it once it is released.
        await asyncio.wait_for(_take(gate, other), 1)

    asyncio.run(scenario())


async def _take(gate: DatabaseGate, scope: dict[str, object]) -> None:
    async with gate.turn(scope):
        pass


def _metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_a_wait_for_a_turn_is_bounded_and_counted() -> None:
    before = {
        name: _metric(name)
        for name in (
            "releaselog_db_turns_in_use",
            "releaselog_db_turns_waiting",
            "releaselog_db_turn_timeouts_total",
            "releaselog_db_turn_wait_seconds_count",
        )
    }

    def moved(name: str) -> float:
        return _metric(name) - before[name]

    async def scenario() -> None:
        gate = DatabaseGate(1, wait_timeout=0.05)
        async with gate.turn({}):
            assert moved("releaselog_db_turns_in_use") == 1
            waiter = asyncio.ensure_future(_take(gate, {}))
            await asyncio.sleep(0.01)
            assert moved("releaselog_db_turns_waiting") == 1
            with pytest.raises(ServiceUnavailable) as refused:
                await waiter
        assert refused.value.headers == {"Retry-After": "1"}
        assert moved("releaselog_db_turns_waiting") == 0
        assert moved("releaselog_db_turns_in_use") == 0
        await asyncio.wait_for(_take(gate, {}), 1)  # nothing was left held

    asyncio.run(scenario())
    assert moved("releaselog_db_turn_timeouts_total") == 1
    assert moved("releaselog_db_turn_wait_seconds_count") == 1  # a free turn is not a wait


def test_a_request_that_finds_no_turn_in_time_gets_a_503(fresh_database_url) -> None:
    url = fresh_database_url()
    migrate(url)
    app = create_app(make_settings(url, db_turn_timeout_seconds=0.05))
    gate = app_state(app).gate

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            scopes = [{} for _ in range(gate.size)]
            async with contextlib.AsyncExitStack() as held:
                for scope in scopes:
                    await held.enter_async_context(gate.turn(scope))
                return await http.get("/v1/me", headers={"X-API-Key": "rlk_unknown"})

    response = asyncio.run(scenario())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"


Creates = GroupCommit[NewSession, object]


def _creates(app: FastAPI, commits: list[int]) -> Creates:
    """The app's kind of group commit, telling `commits` how many creates each one held."""
    engine = app_state(app).engine

    def write(creates: list[NewSession]) -> list[object]:
        results: list[object] = list(create_sessions(engine, creates))
        commits.append(len(creates))
        return results

    return GroupCommit(app_state(app).gate, write)


def _submit_together(group: Creates, creates: list[NewSession]) -> list[object]:
    """Submit every create in the same moment (one event-loop step), as concurrent requests
    do; each one's result or exception, in order."""

    async def run() -> list[object]:
        return await asyncio.gather(*(group.submit(new) for new in creates), return_exceptions=True)

    return asyncio.run(run())


def _feed(app: FastAPI, owner: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
    with app_state(app).engine.connect() as connection:
        rows = connection.execute(
            select(SESSION_TABLE.c.id, SESSION_TABLE.c.change_seq)
            .where(SESSION_TABLE.c.user_id == owner)
            .order_by(SESSION_TABLE.c.change_seq)
        )
        return [(row.id, row.change_seq) for row in rows]


def test_concurrent_creates_share_one_commit(app: FastAPI, alice: Person, bob: Person) -> None:
    commits: list[int] = []
    group = _creates(app, commits)
    people = [uuid.UUID(alice.id), uuid.UUID(bob.id)]
    creates = [
        new_session(people[index % 2], SessionCreate.model_validate(session_body()))
        for index in range(7)
    ]

    results = _submit_together(group, creates)

    assert results == [new.created for new in creates]
    assert commits == [7]  # one transaction held all seven
    for owner in people:  # each person's feed: their creates in submission order, no gaps
        mine = [new.session_id for new in creates if new.owner_id == owner]
        assert _feed(app, owner) == [(session_id, seq) for seq, session_id in enumerate(mine, 1)]


def test_a_failing_write_fails_alone_and_its_group_commits_without_it(
    app: FastAPI, alice: Person, bob: Person
) -> None:
    commits: list[int] = []
    group = _creates(app, commits)
    owner = uuid.UUID(alice.id)

    def create(person: uuid.UUID, **overrides: object) -> NewSession:
        return new_session(person, SessionCreate.model_validate(session_body(**overrides)))

    earlier = create(owner)
    assert _submit_together(group, [earlier]) == [earlier.created]
    commits.clear()
    fine = [create(owner) for _ in range(3)]
    taken = create(uuid.UUID(bob.id), id=str(earlier.session_id))  # Alice's id, by Bob
    gone = create(uuid.uuid4())  # an account that no longer exists
    nul = create(owner, notes="a\x00b")

    results = _submit_together(group, [fine[0], taken, fine[1], gone, nul, fine[2]])

    assert [results[0], results[2], results[5]] == [new.created for new in fine]
    assert isinstance(results[1], IdTaken)
    assert results[1].replay is None  # not a replay: someone else's id
    assert isinstance(results[3], Unauthorized)
    assert isinstance(results[4], BadRequest)
    # The group rolled back and ran each write alone: three commits, one per good write.
    assert commits == [1, 1, 1]
    # Nothing of the failed writes is stored, and they left no gap in Alice's feed.
    stored = [earlier, *fine]
    assert _feed(app, owner) == [(new.session_id, seq) for seq, new in enumerate(stored, start=1)]
    assert _feed(app, uuid.UUID(bob.id)) == []


def test_a_group_queues_webhook_events_for_exactly_the_owners_with_subscribed_coaches(
    app: FastAPI, client: TestClient, make_person: Callable[..., Person]
) -> None:
    alice, bob, coach = make_person("Alice"), make_person("Bob"), make_person("Coach")
    grant(app, coach.id, alice.id)  # Bob has no coach
    hook = client.post(
        "/v1/webhooks",
        json={"url": "https://dashboard.example/hooks", "events": ["session.created"]},
        headers=coach.headers,
    ).json()
    creates = [
        new_session(uuid.UUID(person.id), SessionCreate.model_validate(session_body()))
        for person in (alice, bob, alice, bob)
    ]

    assert _submit_together(_creates(app, commits := []), creates) == [n.created for n in creates]

    assert commits == [4]
    queued = client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=coach.headers).json()
    alices = [new.session_id for new in creates if new.owner_id == uuid.UUID(alice.id)]
    assert sorted(item["session_id"] for item in queued["items"]) == sorted(map(str, alices))
    assert {item["event_type"] for item in queued["items"]} == {"session.created"}


def test_the_follow_up_runs_once_after_a_burst_of_commits_and_never_in_their_path(
    app: FastAPI, alice: Person
) -> None:
    owner = uuid.UUID(alice.id)
    followed: list[bool] = []
    group = GroupCommit(
        app_state(app).gate,
        partial(create_sessions, app_state(app).engine),
        follow_up=lambda: followed.append(True),
        follow_up_delay=0.05,
    )

    def create() -> NewSession:
        return new_session(owner, SessionCreate.model_validate(session_body()))

    async def run() -> tuple[list[bool], list[bool]]:
        await asyncio.gather(*(group.submit(create()) for _ in range(3)))
        await group.submit(create())  # a second group, before the follow-up is due
        right_after = list(followed)
        await asyncio.sleep(0.3)
        return right_after, list(followed)

    right_after, later = asyncio.run(run())

    assert right_after == []  # the writes were acknowledged without waiting for it
    assert later == [True]  # one follow-up for both groups


def test_a_failing_follow_up_leaves_the_writes_and_the_next_ones_alone(
    app: FastAPI, alice: Person, caplog: pytest.LogCaptureFixture
) -> None:
    owner = uuid.UUID(alice.id)

    def broken() -> None:
        raise RuntimeError("disk trouble")

    group = GroupCommit(
        app_state(app).gate,
        partial(create_sessions, app_state(app).engine),
        follow_up=broken,
        follow_up_delay=0,
    )
    first, second = (new_session(owner, SessionCreate.model_validate(session_body())) for _ in "ab")

    async def run() -> list[object]:
        results = [await group.submit(first)]
        await asyncio.sleep(0.1)  # the follow-up ran, and failed
        results.append(await group.submit(second))
        return results

    assert asyncio.run(run()) == [first.created, second.created]
    assert "follow-up of a group commit failed" in caplog.text
    assert [session_id for session_id, _seq in _feed(app, owner)] == [
        first.session_id,
        second.session_id,
    ]


def test_a_wal_checkpoint_copies_the_writes_into_the_database_file(
    app: FastAPI, alice: Person
) -> None:
    engine = app_state(app).engine
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    path = engine.url.database
    new = new_session(uuid.UUID(alice.id), SessionCreate.model_validate(session_body()))
    create_sessions(engine, [new])

    def in_database_file() -> bool:
        # immutable=1 reads the database file alone, as if there were no WAL.
        file = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            query = "SELECT count(*) FROM release_session WHERE id = ?"
            return file.execute(query, (new.session_id.hex,)).fetchone()[0] == 1
        finally:
            file.close()

    assert not in_database_file()  # committed, in the WAL only
    wal_checkpoint(engine)
    assert in_database_file()


def test_sqlite_connections_checkpoint_at_the_configured_wal_size(app: FastAPI) -> None:
    engine = app_state(app).engine
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    with engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert pages == app_state(app).settings.sqlite_wal_autocheckpoint == 4000


def test_the_app_checkpoints_sqlite_after_creates_but_not_postgresql(app: FastAPI) -> None:
    follow_up = app_state(app).session_creates._follow_up
    if app_state(app).engine.dialect.name == "sqlite":
        assert follow_up is not None
        assert follow_up.func is wal_checkpoint
        assert follow_up.args == (app_state(app).engine,)
    else:
        assert follow_up is None


def test_a_database_that_times_out_is_a_503_to_retry(
    client: TestClient, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    def busy(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(accounts, "caller_from_token", busy)
    response = client.get("/v1/me", headers=alice.headers)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert "SELECT" not in response.text
    assert "locked" not in response.text
