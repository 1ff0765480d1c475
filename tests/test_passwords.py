"""Changing a password: re-authentication, every earlier access token refused on reads and
writes, API keys unaffected, wrong attempts counted toward the login limit."""

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.state import app_state
from models.mail import MailOutbox
from tests.conftest import Person
from tests.factories import api_key, session_body

NEW_PASSWORD = "a brand new passphrase"


def _change(client: TestClient, person: Person, current: str, new: str = NEW_PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/me/password",
        json={"current_password": current, "new_password": new},
        headers=person.headers,
    )


def _login(client: TestClient, person: Person, password: str) -> int:
    response = client.post("/v1/auth/token", data={"username": person.email, "password": password})
    return response.status_code


def test_a_change_refuses_every_earlier_token_and_keeps_api_keys(
    client: TestClient, app: FastAPI, alice: Person
) -> None:
    key_headers, _key_id = api_key(client, alice, "sessions:read", "sessions:write")
    second = client.post(
        "/v1/auth/token", data={"username": alice.email, "password": alice.password}
    ).json()["access_token"]
    other_device = {"Authorization": f"Bearer {second}"}

    response = _change(client, alice, alice.password)
    assert response.status_code == 204
    assert response.content == b""
    # The account's email gets a notice, queued in the transaction of the change.
    with app_state(app).engine.connect() as connection:
        notices = (
            connection.execute(
                select(MailOutbox.subject).where(MailOutbox.recipient == alice.email)  # type: ignore[arg-type]
            )
            .scalars()
            .all()
        )
    assert notices == ["Your releaselog password was changed"]

    # Both earlier tokens: 401 on a read, on a create, on a batch, on a PATCH and a DELETE.
    for headers in (alice.headers, other_device):
        assert client.get("/v1/me", headers=headers).status_code == 401
        assert client.get("/v1/sessions", headers=headers).status_code == 401
        assert client.post("/v1/sessions", json=session_body(), headers=headers).status_code == 401
        batch = {"sessions": [session_body()]}
        assert client.post("/v1/sessions/batch", json=batch, headers=headers).status_code == 401
    # The API key keeps working, reads and writes.
    created = client.post("/v1/sessions", json=session_body(), headers=key_headers)
    assert created.status_code == 201
    session_id = created.json()["id"]
    assert client.get("/v1/sessions", headers=key_headers).status_code == 200
    patch = {"notes": "changed"}
    stale = client.patch(f"/v1/sessions/{session_id}", json=patch, headers=alice.headers)
    assert stale.status_code == 401
    assert client.delete(f"/v1/sessions/{session_id}", headers=alice.headers).status_code == 401
    assert client.get(f"/v1/sessions/{session_id}", headers=key_headers).json()["notes"] != (
        "changed"
    )

    # The old password no longer logs in; the new one does, and its token works.
    assert _login(client, alice, alice.password) == 401
    fresh = client.post(
        "/v1/auth/token", data={"username": alice.email, "password": NEW_PASSWORD}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {fresh}"}
    assert client.get("/v1/me", headers=headers).status_code == 200
    assert client.post("/v1/sessions", json=session_body(), headers=headers).status_code == 201


def test_a_wrong_current_password_is_403_and_changes_nothing(
    client: TestClient, alice: Person
) -> None:
    response = _change(client, alice, "not my password at all")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/me", headers=alice.headers).status_code == 200
    assert _login(client, alice, alice.password) == 200


def test_wrong_attempts_count_toward_the_login_limit(client: TestClient, alice: Person) -> None:
    # The per-account limit is 10 a minute in the tests; the fixture's login spent one.
    answers = [_change(client, alice, f"wrong password {n}").status_code for n in range(9)]
    assert answers == [403] * 9
    limited = _change(client, alice, alice.password)
    assert limited.status_code == 429
    assert "retry-after" in limited.headers
    assert _login(client, alice, alice.password) == 429
    assert client.get("/v1/me", headers=alice.headers).status_code == 200  # nothing changed


def test_the_new_password_is_validated_and_an_api_key_cannot_change_it(
    client: TestClient, alice: Person
) -> None:
    assert _change(client, alice, alice.password, new="short").status_code == 422
    key_headers, _ = api_key(client, alice, "sessions:read")
    response = client.post(
        "/v1/me/password",
        json={"current_password": alice.password, "new_password": NEW_PASSWORD},
        headers=key_headers,
    )
    assert response.status_code == 403
    assert _login(client, alice, alice.password) == 200
    assert client.post("/v1/me/password", json={}).status_code == 401
