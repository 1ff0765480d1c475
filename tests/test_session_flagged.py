"""session.flagged: queued by the write that first leaves a session with a worse rating.

Worse (API.md, Insights): improvement (after - before, signed so that positive is better) at
most -mcid_abs, compared exactly on the one-decimal values. Pain's mcid_abs is 2, rom's 5.
"""

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.services.sessions import create_sessions, new_session
from api.services.webhook_worker import deliver_due
from api.state import app_state
from models.release_session import ReleaseSession, SessionCreate
from tests.conftest import Person
from tests.factories import session_body
from tests.webhook_support import Receiver, grant

FLAGGED = "session.flagged"


def pain(before: float, after: float | None, side: str = "left") -> dict[str, Any]:
    return {"region": "adductors", "side": side, "metric": "pain", "before": before, "after": after}


def rom(before: float, after: float | None) -> dict[str, Any]:
    return {
        "region": "hamstrings",
        "side": "both",
        "metric": "rom",
        "before": before,
        "after": after,
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def coach(make_person: Callable[..., Person]) -> Person:
    return make_person("Coach Carla")


@pytest.fixture
def hook(client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver) -> str:
    """A webhook of alice's coach, subscribed to every event; its id."""
    response = client.post("/v1/webhooks", json={"url": receiver.url}, headers=coach.headers)
    assert response.status_code == 201, response.text
    grant(app, coach.id, alice.id)
    return str(response.json()["id"])


def queued(client: TestClient, coach: Person, hook_id: str) -> list[tuple[str, str]]:
    """(event type, session id) of every delivery queued for the hook, oldest first."""
    response = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=coach.headers)
    assert response.status_code == 200, response.text
    return [(item["event_type"], item["session_id"]) for item in reversed(response.json()["items"])]


def flagged(client: TestClient, coach: Person, hook_id: str) -> list[str]:
    return [session for kind, session in queued(client, coach, hook_id) if kind == FLAGGED]


def create(client: TestClient, person: Person, *ratings: dict[str, Any]) -> str:
    body = session_body(ratings=list(ratings))
    response = client.post("/v1/sessions", json=body, headers=person.headers)
    assert response.status_code == 201, response.text
    return str(body["id"])


def patch(client: TestClient, person: Person, session_id: str, **changes: Any) -> dict[str, Any]:
    response = client.patch(f"/v1/sessions/{session_id}", json=changes, headers=person.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def flagged_at(app: FastAPI, session_id: str) -> Any:
    with Session(app_state(app).engine) as db:
        return db.exec(
            select(ReleaseSession.flagged_at).where(ReleaseSession.id == uuid.UUID(session_id))
        ).one()


# --- creates ----------------------------------------------------------------------------------


def test_a_worse_create_sends_created_then_flagged_with_the_same_session(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, hook: str, receiver: Receiver
) -> None:
    session_id = create(client, alice, pain(3, 5), rom(30, 40))  # pain 3 -> 5: -2, worse
    assert queued(client, coach, hook) == [("session.created", session_id), (FLAGGED, session_id)]
    assert flagged_at(app, session_id) is not None

    while deliver_due(app_state(app).engine, app_state(app).settings):
        pass
    bodies = {r.json["type"]: r.json for r in receiver.received}
    assert set(bodies) == {"session.created", FLAGGED}
    stored = client.get(f"/v1/sessions/{session_id}", headers=alice.headers).json()
    assert bodies[FLAGGED]["data"] == {
        "client_id": alice.id,
        "session_id": session_id,
        "session": stored,
    }
    assert bodies[FLAGGED]["data"] == bodies["session.created"]["data"]


@pytest.mark.parametrize(
    "ratings",
    [
        [pain(3, 4)],  # -1: not worse
        [pain(3.1, 5)],  # -1.9: not worse
        [pain(3, None)],  # no after: never worse
        [pain(5, 3)],  # better
        [rom(40, 35.1)],  # -4.9 degrees, mcid_abs 5: not worse
    ],
)
def test_a_create_that_is_not_worse_sends_no_flag(
    client: TestClient,
    app: FastAPI,
    coach: Person,
    alice: Person,
    hook: str,
    ratings: list[dict[str, Any]],
) -> None:
    session_id = create(client, alice, *ratings)
    assert queued(client, coach, hook) == [("session.created", session_id)]
    assert flagged_at(app, session_id) is None


@pytest.mark.parametrize(
    "ratings",
    [
        [pain(3.1, 5.1)],  # exactly -2 (5.1 - 3.1 = 2.0000000000000004 in floats)
        [pain(4.2, 6.2)],  # exactly -2 (6.2 - 4.2 = 1.9999999999999996 in floats)
        [rom(40, 35)],  # -5 degrees = -mcid_abs
        [pain(5, 3), pain(3, 5, side="right")],  # one worse rating among others is enough
    ],
)
def test_a_create_at_the_threshold_is_flagged(
    client: TestClient, coach: Person, alice: Person, hook: str, ratings: list[dict[str, Any]]
) -> None:
    session_id = create(client, alice, *ratings)
    assert flagged(client, coach, hook) == [session_id]


def test_a_replayed_worse_create_flags_once(
    client: TestClient, coach: Person, alice: Person, hook: str
) -> None:
    body = session_body(ratings=[pain(2, 6)])
    assert client.post("/v1/sessions", json=body, headers=alice.headers).status_code == 201
    assert client.post("/v1/sessions", json=body, headers=alice.headers).status_code == 200
    assert queued(client, coach, hook) == [("session.created", body["id"]), (FLAGGED, body["id"])]


def test_group_committed_creates_flag_only_the_worse_ones(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, bob: Person, hook: str
) -> None:
    """Creates of several owners in one transaction (the GroupCommit's create_sessions)."""
    bobs_hook = client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/b"}, headers=bob.headers
    ).json()["id"]
    grant(app, bob.id, coach.id)  # bob coaches the coach, who logs a worse session too

    def new(person: Person, *ratings: dict[str, Any]) -> Any:
        data = SessionCreate.model_validate(session_body(ratings=list(ratings)))
        return new_session(uuid.UUID(person.id), data)

    creates = [
        new(alice, pain(3, 5)),
        new(alice, pain(3, 4)),
        new(coach, rom(50, 40)),
        new(alice, pain(6, 3), pain(1, 8, side="right")),
    ]
    create_sessions(app_state(app).engine, creates)
    worse = [str(creates[0].session_id), str(creates[3].session_id)]
    assert flagged(client, coach, hook) == worse
    created = [s for kind, s in queued(client, coach, hook) if kind == "session.created"]
    assert created == [
        str(create.session_id) for create in creates if create.owner_id != uuid.UUID(coach.id)
    ]
    assert flagged(client, bob, bobs_hook) == [str(creates[2].session_id)]


def test_a_batch_flags_each_worse_session_once(
    client: TestClient, coach: Person, alice: Person, hook: str
) -> None:
    items = [
        session_body(ratings=[pain(3, 5)]),
        session_body(ratings=[pain(3, 4)]),
        session_body(ratings=[rom(30, 20)]),
        {"started_at": "nonsense"},
    ]
    response = client.post("/v1/sessions/batch", json={"sessions": items}, headers=alice.headers)
    assert response.status_code == 200, response.text
    assert flagged(client, coach, hook) == [items[0]["id"], items[2]["id"]]
    # The batch again: every item unchanged, nothing queued again.
    again = client.post("/v1/sessions/batch", json={"sessions": items[:3]}, headers=alice.headers)
    assert [result["status"] for result in again.json()["results"]] == ["unchanged"] * 3
    assert flagged(client, coach, hook) == [items[0]["id"], items[2]["id"]]


# --- patches ----------------------------------------------------------------------------------


def test_the_patch_that_first_makes_it_worse_flags_it_and_later_ones_do_not(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, hook: str
) -> None:
    session_id = create(client, alice, pain(3, None))  # after logged later
    assert flagged(client, coach, hook) == []
    updated = patch(client, alice, session_id, ratings=[pain(3, 5)])
    assert queued(client, coach, hook)[-2:] == [
        ("session.updated", session_id),
        (FLAGGED, session_id),
    ]
    first = flagged_at(app, session_id)
    assert first is not None
    # Still worse (a note; then worse still): updated, never flagged again.
    patch(client, alice, session_id, notes="it got worse")
    patch(client, alice, session_id, ratings=[pain(3, 8), rom(30, 10)])
    assert flagged(client, coach, hook) == [session_id]
    assert flagged_at(app, session_id) == first
    assert [kind for kind, _ in queued(client, coach, hook)].count("session.updated") == 3
    assert updated["version"] == 2


def test_a_session_made_not_worse_then_worse_again_is_flagged_again(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, hook: str
) -> None:
    """The documented choice: a write that leaves it not worse clears the flag, so a later
    write that makes it worse again is a first again."""
    session_id = create(client, alice, pain(3, 5))
    patch(client, alice, session_id, ratings=[pain(3, 4)])  # corrected: not worse
    assert flagged_at(app, session_id) is None
    patch(client, alice, session_id, notes="still fine")
    assert flagged(client, coach, hook) == [session_id]
    patch(client, alice, session_id, ratings=[pain(3, 6)])
    assert flagged(client, coach, hook) == [session_id, session_id]


def test_a_patch_that_changes_nothing_queues_nothing(
    client: TestClient, coach: Person, alice: Person, hook: str
) -> None:
    session_id = create(client, alice, pain(3, 5))
    before = queued(client, coach, hook)
    patch(client, alice, session_id, ratings=[pain(3, 5)])
    assert queued(client, coach, hook) == before


# --- who gets it ------------------------------------------------------------------------------


def test_only_hooks_subscribed_to_session_flagged_get_it(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    def subscribe(events: list[str]) -> str:
        response = client.post(
            "/v1/webhooks", json={"url": receiver.url, "events": events}, headers=coach.headers
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    only_flags = subscribe([FLAGGED])
    without = subscribe(["session.created", "session.updated"])
    grant(app, coach.id, alice.id)
    session_id = create(client, alice, pain(3, 5))
    other = create(client, alice, pain(3, None))
    patch(client, alice, other, ratings=[pain(3, 7)])
    assert queued(client, coach, only_flags) == [(FLAGGED, session_id), (FLAGGED, other)]
    assert FLAGGED not in {kind for kind, _ in queued(client, coach, without)}
    assert len(queued(client, coach, without)) == 3


def test_nobody_coaching_means_nothing_queued_but_the_session_is_still_marked(
    client: TestClient, app: FastAPI, alice: Person
) -> None:
    session_id = create(client, alice, pain(3, 5))
    assert flagged_at(app, session_id) is not None


# --- deletion ---------------------------------------------------------------------------------


def test_a_deleted_sessions_queued_flag_is_dropped(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, hook: str, receiver: Receiver
) -> None:
    session_id = create(client, alice, pain(3, 5))
    response = client.delete(f"/v1/sessions/{session_id}", headers=alice.headers)
    assert response.status_code == 204
    assert flagged_at(app, session_id) is None  # the tombstone keeps nothing of it

    while deliver_due(app_state(app).engine, app_state(app).settings):
        pass
    assert [r.json["type"] for r in receiver.received] == ["session.deleted"]
    response = client.get(f"/v1/webhooks/{hook}/deliveries", headers=coach.headers)
    log = {
        item["event_type"]: (item["status"], item["attempts"]) for item in response.json()["items"]
    }
    assert log == {
        "session.created": ("failed", 0),
        FLAGGED: ("failed", 0),
        "session.deleted": ("delivered", 1),
    }
    assert all(b"adductors" not in r.body for r in receiver.received)
    assert all(json.loads(r.body)["data"]["session"] is None for r in receiver.received)
