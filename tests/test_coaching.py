"""Invites and grants: redeeming codes, refusing bad ones, revocation by either side, the race."""

import hashlib
import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from api.state import app_state
from models.coaching import Grant, Invite
from tests.factories import api_key, link, session_body


def _invite(client, coach) -> str:
    response = client.post("/v1/invites", headers=coach.headers)
    assert response.status_code == 201, response.text
    return response.json()["code"]


def _redeem(client, person, code: str):
    return client.post("/v1/grants", json={"code": code}, headers=person.headers)


def _invites(app) -> list[Invite]:
    with Session(app_state(app).engine) as db:
        return list(db.execute(select(Invite)).scalars())


def _grants(app) -> list[Grant]:
    with Session(app_state(app).engine) as db:
        return list(db.execute(select(Grant)).scalars())


def _assert_not_found(response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_invite_is_a_random_code_stored_only_as_its_hash(client, app, alice):
    before = datetime.now(UTC)
    response = client.post("/v1/invites", headers=alice.headers)
    after = datetime.now(UTC)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"code", "expires_at"}
    # token_urlsafe(16): 16 random bytes = 128 bits, 22 base64url characters.
    assert len(body["code"]) >= 22
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(days=7) <= expires_at <= after + timedelta(days=7)

    [stored] = _invites(app)
    assert stored.code_hash == hashlib.sha256(body["code"].encode()).hexdigest()
    assert stored.coach_id == uuid.UUID(alice.id)
    assert stored.redeemed_at is None
    assert _invite(client, alice) != body["code"]


def test_redeeming_creates_a_grant_the_client_lists(client, app, make_person):
    coach, person = make_person("Coach Carla"), make_person("Client Cleo")
    code = _invite(client, coach)

    response = _redeem(client, person, code)

    assert response.status_code == 201, response.text
    grant = response.json()
    assert set(grant) == {"id", "coach", "created_at"}
    assert grant["coach"] == {"id": coach.id, "display_name": "Coach Carla"}
    listed = client.get("/v1/grants", headers=person.headers)
    assert listed.status_code == 200
    assert listed.json() == {"items": [grant], "next_cursor": None}
    # Grants are the client's: the coach has none of their own.
    assert client.get("/v1/grants", headers=coach.headers).json() == {
        "items": [],
        "next_cursor": None,
    }
    [invite] = _invites(app)
    assert invite.redeemed_by_id == uuid.UUID(person.id)
    assert invite.redeemed_at is not None


def test_a_used_code_is_404_and_changes_nothing(client, app, make_person):
    coach, first, second = make_person("Coach"), make_person("First"), make_person("Second")
    code = _invite(client, coach)
    assert _redeem(client, first, code).status_code == 201

    _assert_not_found(_redeem(client, second, code))
    _assert_not_found(_redeem(client, first, code))

    [grant] = _grants(app)
    assert grant.client_id == uuid.UUID(first.id)
    [invite] = _invites(app)
    assert invite.redeemed_by_id == uuid.UUID(first.id)
    assert client.get("/v1/grants", headers=second.headers).json() == {
        "items": [],
        "next_cursor": None,
    }


def test_an_expired_code_is_404_and_changes_nothing(client, app, make_person):
    coach, person = make_person("Coach"), make_person("Client")
    code = _invite(client, coach)
    with app_state(app).engine.begin() as connection:
        connection.execute(
            update(Invite).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    _assert_not_found(_redeem(client, person, code))

    assert _grants(app) == []
    [invite] = _invites(app)
    assert invite.redeemed_at is None
    assert invite.redeemed_by_id is None


def test_an_unknown_code_is_404(client, app, alice):
    _assert_not_found(_redeem(client, alice, "no-such-code"))
    assert _grants(app) == []


def test_your_own_code_is_404_and_stays_usable_for_someone_else(client, app, alice, bob):
    code = _invite(client, alice)

    _assert_not_found(_redeem(client, alice, code))
    assert _grants(app) == []
    [invite] = _invites(app)
    assert invite.redeemed_at is None

    response = _redeem(client, bob, code)
    assert response.status_code == 201
    assert response.json()["coach"]["id"] == alice.id


def test_a_second_grant_to_the_same_coach_is_409_and_the_code_stays_unused(
    client, app, make_person
):
    coach, person, other = make_person("Coach"), make_person("Client"), make_person("Other")
    link(client, coach, person)
    second_code = _invite(client, coach)

    response = _redeem(client, person, second_code)

    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert len(_grants(app)) == 1
    # The code was not spent: someone else can still redeem it.
    assert _redeem(client, other, second_code).status_code == 201


def test_after_a_revocation_the_coach_can_be_invited_again(client, make_person):
    coach, person = make_person("Coach"), make_person("Client")
    grant = link(client, coach, person)
    assert client.delete(f"/v1/grants/{grant['id']}", headers=person.headers).status_code == 204

    again = link(client, coach, person)

    assert again["id"] != grant["id"]
    assert client.get("/v1/grants", headers=person.headers).json() == {
        "items": [again],
        "next_cursor": None,
    }


def test_grant_body_rejects_unknown_fields(client, alice, bob):
    code = _invite(client, alice)
    response = client.post(
        "/v1/grants", json={"code": code, "coach_id": alice.id}, headers=bob.headers
    )
    assert response.status_code == 422
    assert client.post("/v1/grants", json={}, headers=bob.headers).status_code == 422


def test_client_revokes_and_the_coach_loses_access_at_once(client, make_person):
    coach, person = make_person("Coach"), make_person("Client")
    grant = link(client, coach, person)
    created = client.post("/v1/sessions", json=session_body(), headers=person.headers).json()
    base = f"/v1/clients/{person.id}/sessions"
    assert client.get(base, headers=coach.headers).status_code == 200

    response = client.delete(f"/v1/grants/{grant['id']}", headers=person.headers)

    assert response.status_code == 204
    _assert_not_found(client.get(base, headers=coach.headers))
    _assert_not_found(client.get(f"{base}/{created['id']}", headers=coach.headers))
    assert client.get("/v1/clients", headers=coach.headers).json() == {"items": []}
    assert client.get("/v1/grants", headers=person.headers).json() == {
        "items": [],
        "next_cursor": None,
    }
    _assert_not_found(client.delete(f"/v1/grants/{grant['id']}", headers=person.headers))


def test_only_the_client_revokes_by_grant_id(client, make_person):
    coach, person, stranger = make_person("Coach"), make_person("Client"), make_person("X")
    grant = link(client, coach, person)

    _assert_not_found(client.delete(f"/v1/grants/{grant['id']}", headers=coach.headers))
    _assert_not_found(client.delete(f"/v1/grants/{grant['id']}", headers=stranger.headers))
    _assert_not_found(client.delete(f"/v1/grants/{uuid.uuid4()}", headers=person.headers))

    assert client.get(f"/v1/clients/{person.id}/sessions", headers=coach.headers).status_code == 200


def test_coach_ends_the_link_and_loses_access_at_once(client, app, make_person):
    coach, person = make_person("Coach"), make_person("Client")
    link(client, coach, person)

    response = client.delete(f"/v1/clients/{person.id}", headers=coach.headers)

    assert response.status_code == 204
    _assert_not_found(client.get(f"/v1/clients/{person.id}/sessions", headers=coach.headers))
    assert client.get("/v1/grants", headers=person.headers).json() == {
        "items": [],
        "next_cursor": None,
    }
    [grant] = _grants(app)
    assert grant.revoked_at is not None
    # Nothing live any more: 404.
    _assert_not_found(client.delete(f"/v1/clients/{person.id}", headers=coach.headers))


def test_ending_a_link_that_does_not_exist_is_404(client, alice, bob):
    _assert_not_found(client.delete(f"/v1/clients/{bob.id}", headers=alice.headers))
    _assert_not_found(client.delete(f"/v1/clients/{uuid.uuid4()}", headers=alice.headers))
    # The client cannot end the link from the coach's side either.
    link(client, alice, bob)
    _assert_not_found(client.delete(f"/v1/clients/{alice.id}", headers=bob.headers))


def test_invites_and_grants_need_an_access_token(client, alice, bob):
    grant = link(client, alice, bob)
    coach_key, _ = api_key(client, alice, "sessions:read", "clients:read")
    client_key, _ = api_key(client, bob, "sessions:read", "sessions:write", "summaries:read")
    code = _invite(client, alice)

    assert client.post("/v1/invites", headers=coach_key).status_code == 403
    assert client.post("/v1/grants", json={"code": code}, headers=client_key).status_code == 403
    assert client.get("/v1/grants", headers=client_key).status_code == 403
    assert client.delete(f"/v1/grants/{grant['id']}", headers=client_key).status_code == 403
    assert client.delete(f"/v1/clients/{bob.id}", headers=coach_key).status_code == 403
    # Nothing changed: the grant is live and the code unused.
    assert client.get("/v1/grants", headers=bob.headers).json() == {
        "items": [grant],
        "next_cursor": None,
    }


def test_anonymous_callers_get_401(client, alice):
    assert client.post("/v1/invites").status_code == 401
    assert client.post("/v1/grants", json={"code": "x"}).status_code == 401
    assert client.get("/v1/grants").status_code == 401
    assert client.delete(f"/v1/grants/{uuid.uuid4()}").status_code == 401
    assert client.delete(f"/v1/clients/{alice.id}").status_code == 401


def test_concurrent_redeemers_of_one_code_exactly_one_wins(client, app, make_person):
    coach = make_person("Coach")
    racers = [make_person(f"Racer {n}") for n in range(5)]
    code = _invite(client, coach)
    start = threading.Barrier(len(racers))
    statuses: list[int] = []
    lock = threading.Lock()

    def redeem(person) -> None:
        start.wait()
        status = _redeem(client, person, code).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=redeem, args=(person,)) for person in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201, 404, 404, 404, 404]
    [grant] = _grants(app)
    [invite] = _invites(app)
    assert invite.redeemed_by_id == grant.client_id
    assert grant.coach_id == uuid.UUID(coach.id)
