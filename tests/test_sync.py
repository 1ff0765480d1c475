"""The sync feed: every change after a token, oldest first, never missing one."""

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from api.services import sessions as service
from api.services.sync import changed_sessions, encode_token, purge_tombstones
from api.state import app_state
from models.release_session import ReleaseSession, SessionCreate, SessionUpdate
from tests.conftest import Person
from tests.factories import session_body

FEED = "/v1/sessions/changes"


def _drain(client, person: Person, since: str = "", limit: int = 100):
    """Follow next_since until has_more is false; returns (items, final token, pages)."""
    items, pages = [], 0
    while True:
        page = client.get(FEED, params={"since": since, "limit": limit}, headers=person.headers)
        assert page.status_code == 200, page.text
        body = page.json()
        items.extend(body["items"])
        since = body["next_since"]
        pages += 1
        if not body["has_more"]:
            return items, since, pages


def test_paging_through_a_long_feed_sees_each_change_once(client, alice: Person):
    ids = []
    for _ in range(25):
        body = session_body()
        client.post("/v1/sessions", json=body, headers=alice.headers)
        ids.append(body["id"])
    items, token, pages = _drain(client, alice, limit=7)
    assert pages == 4  # 7 + 7 + 7 + 4
    assert [item["id"] for item in items] == ids  # oldest change first
    assert all(not item["deleted"] and item["session"]["id"] == item["id"] for item in items)
    # Nothing new: an empty page that keeps the token.
    again = client.get(FEED, params={"since": token}, headers=alice.headers).json()
    assert again == {"items": [], "next_since": token, "has_more": False}


def test_updates_and_deletes_after_a_read(client, alice: Person):
    first, second, third = session_body(), session_body(), session_body()
    for body in (first, second, third):
        client.post("/v1/sessions", json=body, headers=alice.headers)
    _, token, _ = _drain(client, alice)
    client.patch(f"/v1/sessions/{first['id']}", json={"notes": "later"}, headers=alice.headers)
    client.delete(f"/v1/sessions/{second['id']}", headers=alice.headers)
    items, _, _ = _drain(client, alice, since=token)
    assert [(item["id"], item["deleted"]) for item in items] == [
        (first["id"], False),
        (second["id"], True),
    ]
    assert items[0]["session"]["notes"] == "later"
    assert items[0]["session"]["version"] == 2
    assert items[1]["session"] is None


def test_several_changes_between_polls_show_once_in_latest_state(client, alice: Person):
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)
    _, token, _ = _drain(client, alice)
    for note in ("one", "two", "three"):
        client.patch(f"/v1/sessions/{body['id']}", json={"notes": note}, headers=alice.headers)
    items, _, _ = _drain(client, alice, since=token)
    assert len(items) == 1
    assert items[0]["session"]["notes"] == "three"
    assert items[0]["session"]["version"] == 4


def test_batch_and_replays(client, alice: Person):
    bodies = [session_body() for _ in range(3)]
    client.post("/v1/sessions/batch", json={"sessions": bodies}, headers=alice.headers)
    _, token, _ = _drain(client, alice)
    # Replays change nothing, so the feed stays quiet.
    client.post("/v1/sessions", json=bodies[0], headers=alice.headers)
    client.post("/v1/sessions/batch", json={"sessions": bodies}, headers=alice.headers)
    assert _drain(client, alice, since=token)[0] == []


@pytest.mark.parametrize("since", ["garbage!", "cmwxOmFiYw", encode_token(10**6)])
def test_malformed_or_unknown_token_is_400(client, alice: Person, since):
    response = client.get(FEED, params={"since": since}, headers=alice.headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("limit", [0, 1001])
def test_limit_bounds(client, alice: Person, limit):
    assert client.get(FEED, params={"limit": limit}, headers=alice.headers).status_code == 422


def test_tokens_older_than_purged_tombstones_get_410(client, app, alice: Person):
    kept, deleted = session_body(), session_body()
    client.post("/v1/sessions", json=kept, headers=alice.headers)
    _, old_token, _ = _drain(client, alice)
    client.post("/v1/sessions", json=deleted, headers=alice.headers)
    client.delete(f"/v1/sessions/{deleted['id']}", headers=alice.headers)
    long_ago = datetime.now(UTC) - timedelta(days=400)
    with Session(app_state(app).engine) as db:
        db.execute(
            update(ReleaseSession)
            .where(ReleaseSession.id == uuid.UUID(deleted["id"]))
            .values(deleted_at=long_ago)
        )
        db.commit()
        assert purge_tombstones(db, datetime.now(UTC), timedelta(days=180)) == 1
    gone = client.get(FEED, params={"since": old_token}, headers=alice.headers)
    assert gone.status_code == 410
    assert "resync" in gone.json()["detail"]
    # Starting over works and no longer shows the purged tombstone.
    items, _, _ = _drain(client, alice)
    assert [item["id"] for item in items] == [kept["id"]]


def test_feed_is_per_person(client, alice: Person, bob: Person):
    client.post("/v1/sessions", json=session_body(), headers=alice.headers)
    assert _drain(client, bob)[0] == []


def test_concurrent_writers_never_hide_a_change_from_a_poller(app, alice: Person):
    """Writers create and update sessions in parallel while a poller follows next_since.

    The poller keeps the latest version it saw of each session; after a final drain it must
    hold every session in its final state, and must never see a version go backwards.
    """
    engine = app_state(app).engine
    owner = uuid.UUID(alice.id)
    writers, per_writer = 4, 15
    done = threading.Event()
    errors: list[BaseException] = []
    seen: dict[uuid.UUID, tuple[int, bool]] = {}
    regressions: list[uuid.UUID] = []

    def write(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[uuid.UUID] = []
        try:
            for _ in range(per_writer):
                with Session(engine, expire_on_commit=False) as db:
                    if mine and rng.random() < 0.4:
                        target = rng.choice(mine)
                        patch = SessionUpdate(notes=f"n{rng.random()}")
                        service.update_session(db, owner, target, patch, None)
                    else:
                        data = SessionCreate.model_validate(session_body())
                        new = service.new_session(owner, data)
                        [created] = service.create_sessions(engine, [new])
                        mine.append(created.id)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def poll_once(token: str) -> tuple[str, bool]:
        with Session(engine) as db:
            rows, token, has_more = changed_sessions(db, owner, token, 5)
            for row in rows:
                version, deleted = row.version, row.deleted_at is not None
                if row.id in seen and seen[row.id][0] > version:
                    regressions.append(row.id)
                seen[row.id] = (version, deleted)
            db.rollback()
        return token, has_more

    def poll() -> None:
        token = ""
        while not done.is_set():
            token, _ = poll_once(token)
        has_more = True
        while has_more:
            token, has_more = poll_once(token)

    threads = [threading.Thread(target=write, args=(seed,)) for seed in range(writers)]
    poller = threading.Thread(target=poll)
    poller.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    done.set()
    poller.join(timeout=120)
    assert not errors, errors
    assert not regressions

    with Session(engine) as db:
        final = {
            row.id: (row.version, row.deleted_at is not None)
            for row in db.exec(select(ReleaseSession).where(ReleaseSession.user_id == owner))
        }
    assert final
    assert seen == final
