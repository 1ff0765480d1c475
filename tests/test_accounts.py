"""Accounts: register, token, /v1/me, API keys."""

import uuid
from contextlib import contextmanager

import pytest
from sqlmodel import Session, delete, func, select

from api.services import accounts
from api.state import app_state
from models.release_session import ReleaseSession
from models.user import User
from tests.conftest import Person
from tests.factories import session_body

REGISTER = "/v1/auth/register"


def _register(client, **overrides):
    body = {"email": "Ana@Example.com", "password": "long enough secret", "display_name": "Ana"}
    body.update(overrides)
    return client.post(REGISTER, json=body)


def test_register_returns_the_user_with_defaults(client):
    response = _register(client)
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ana@example.com"
    assert body["display_name"] == "Ana"
    assert body["timezone"] == "UTC"
    assert body["created_at"].endswith("Z")
    assert set(body) == {"id", "email", "display_name", "timezone", "created_at"}


def test_email_is_case_insensitive_and_unique(client):
    assert _register(client).status_code == 201
    duplicate = _register(client, email="ANA@example.COM")
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"


def test_the_password_is_hashed_before_the_write_transaction(client, monkeypatch):
    """Argon2 takes tens of milliseconds: not inside the write lock (SQLite), where every
    other write would wait for it."""
    steps = []
    real_transaction, real_hash = accounts.write_transaction, accounts.hash_password

    @contextmanager
    def traced_transaction(db):
        steps.append("begin")
        with real_transaction(db) as connection:
            yield connection
        steps.append("end")

    def traced_hash(password):
        steps.append("hash")
        return real_hash(password)

    monkeypatch.setattr(accounts, "write_transaction", traced_transaction)
    monkeypatch.setattr(accounts, "hash_password", traced_hash)

    assert _register(client).status_code == 201
    assert steps == ["hash", "begin", "end"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"password": "short"}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"display_name": ""}, "display_name"),
        ({"is_admin": True}, "is_admin"),
    ],
)
def test_register_validation(client, overrides, field):
    response = _register(client, **overrides)
    assert response.status_code == 422
    body = response.json()
    assert body["status"] == 422
    assert any(field in error["loc"] for error in body["errors"])


def test_token_and_me(client):
    _register(client, timezone="Europe/Berlin")
    token = client.post(
        "/v1/auth/token", data={"username": "ANA@example.com", "password": "long enough secret"}
    )
    assert token.status_code == 200
    body = token.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["timezone"] == "Europe/Berlin"


def test_wrong_credentials_are_401_alike(client):
    _register(client)
    wrong_password = client.post(
        "/v1/auth/token", data={"username": "ana@example.com", "password": "wrong password!"}
    )
    unknown_email = client.post(
        "/v1/auth/token", data={"username": "nobody@example.com", "password": "wrong password!"}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()


def test_requests_without_credentials_are_401(client):
    response = client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_patch_me(client, alice: Person):
    response = client.patch(
        "/v1/me",
        json={"display_name": "Alice B", "timezone": "America/New_York"},
        headers=alice.headers,
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "Alice B"
    assert client.get("/v1/me", headers=alice.headers).json()["timezone"] == "America/New_York"
    bad = client.patch("/v1/me", json={"timezone": "Nowhere"}, headers=alice.headers)
    assert bad.status_code == 422
    assert client.patch("/v1/me", json={"email": "x@y.z"}, headers=alice.headers).status_code == 422


def test_api_key_lifecycle(client, alice: Person, bob: Person):
    created = client.post(
        "/v1/api-keys",
        json={"name": "dashboard", "scopes": ["sessions:read"]},
        headers=alice.headers,
    )
    assert created.status_code == 201
    key = created.json()["key"]
    key_id = created.json()["id"]
    assert created.json()["scopes"] == ["sessions:read"]

    listed = client.get("/v1/api-keys", headers=alice.headers).json()["items"]
    assert [item["id"] for item in listed] == [key_id]
    assert "key" not in listed[0]
    assert client.get("/v1/api-keys", headers=bob.headers).json()["items"] == []

    as_key = {"X-API-Key": key}
    assert client.get("/v1/sessions", headers=as_key).status_code == 200
    # Outside its scopes: 403.
    denied = client.post("/v1/sessions", json={}, headers=as_key)
    assert denied.status_code == 403
    # A key cannot mint keys.
    assert (
        client.post(
            "/v1/api-keys", json={"name": "x", "scopes": ["sessions:write"]}, headers=as_key
        ).status_code
        == 403
    )

    # Bob cannot revoke Alice's key.
    assert client.delete(f"/v1/api-keys/{key_id}", headers=bob.headers).status_code == 404
    assert client.delete(f"/v1/api-keys/{key_id}", headers=alice.headers).status_code == 204
    assert client.get("/v1/sessions", headers=as_key).status_code == 401
    assert client.delete(f"/v1/api-keys/{key_id}", headers=alice.headers).status_code == 404


def test_api_key_scopes_are_validated(client, alice: Person):
    response = client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["admin"]}, headers=alice.headers
    )
    assert response.status_code == 422


def test_api_keys_are_stored_hashed(client, app, alice: Person):
    key = client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["sessions:read"]}, headers=alice.headers
    ).json()["key"]
    with app_state(app).engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT key_hash FROM api_key").scalar_one()
        password = connection.exec_driver_sql("SELECT password_hash FROM user_account").first()[0]
    assert key not in stored
    assert len(stored) == 64
    assert password.startswith("$argon2")


def test_api_key_list_is_cursor_paginated(client, alice: Person):
    created = [
        client.post(
            "/v1/api-keys",
            json={"name": f"k{index}", "scopes": ["sessions:read"]},
            headers=alice.headers,
        ).json()["id"]
        for index in range(5)
    ]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/api-keys", params=params, headers=alice.headers).json()
        assert len(page["items"]) <= 2
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created  # oldest first, each once
    bad = client.get("/v1/api-keys", params={"cursor": "nonsense"}, headers=alice.headers)
    assert bad.status_code == 400


def test_token_of_a_removed_account_is_401_everywhere(client, app, alice: Person):
    """Writes check the account inside their own transaction (no separate look-up first):
    the token of an account removed since it was issued still gets 401, and stores nothing."""
    with Session(app_state(app).engine) as db:
        db.execute(delete(User).where(User.id == uuid.UUID(alice.id)))  # type: ignore[arg-type]
        db.commit()
    headers = alice.headers
    batch = {"sessions": [session_body()]}
    without_id = {name: value for name, value in session_body().items() if name != "id"}
    assert client.get("/v1/me", headers=headers).status_code == 401
    assert client.get("/v1/sessions", headers=headers).status_code == 401
    for answer in (
        client.post("/v1/sessions", json=session_body(), headers=headers),
        client.post("/v1/sessions", json=without_id, headers=headers),
        client.post("/v1/sessions/batch", json=batch, headers=headers),
    ):
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"] == "Bearer"
    with Session(app_state(app).engine) as db:
        assert db.exec(select(func.count()).select_from(ReleaseSession)).one() == 0
