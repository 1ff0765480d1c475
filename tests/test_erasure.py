"""DELETE /v1/me erases the person: a person with every kind of data is erased, then every
table of the database is scanned for anything of theirs. Runs on this run's database
(SQLite, or PostgreSQL when TEST_DATABASE_URL says so)."""

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, create_engine, select, text

from api.state import app_state
from tests.conftest import Person
from tests.factories import api_key, link, session_body
from tests.serverproc import ServerProcess, fresh_database
from tests.webhook_support import Receiver

CANARY_NOTE = "canary-note-7f3a9 left adductor knot"
CANARY_NAME = "Zelda Quinterra"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _erase(client: TestClient, person: Person, password: str):  # type: ignore[no-untyped-def]
    return client.request("DELETE", "/v1/me", json={"password": password}, headers=person.headers)


def _every_row(app: FastAPI) -> Iterator[tuple[str, dict[str, object]]]:
    """Every row of every table in the database (reflected: tables no model names too)."""
    engine = app_state(app).engine
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                yield table.name, dict(row._mapping)


def _traces(value: object, needles: list[str]) -> list[str]:
    text = json.dumps(value, default=str).lower()
    return [needle for needle in needles if needle.lower() in text]


def test_erasure_leaves_nothing_of_the_person_in_any_table(
    client: TestClient, app: FastAPI, make_person, receiver: Receiver
) -> None:
    zelda: Person = make_person(CANARY_NAME)
    coach: Person = make_person("Coach Carol")  # Zelda's coach
    pupil: Person = make_person("Pupil Dan")  # Zelda coaches Dan
    # Her coach follows her by webhook: her sessions sit in the coach's outbox.
    hook = client.post("/v1/webhooks", json={"url": receiver.url}, headers=coach.headers)
    assert hook.status_code == 201
    link(client, coach, zelda)
    link(client, zelda, pupil)
    # Her own webhook, with a pending delivery about her pupil.
    own = client.post("/v1/webhooks", json={"url": receiver.url}, headers=zelda.headers)
    assert own.status_code == 201
    assert (
        client.post("/v1/sessions", json=session_body(), headers=pupil.headers).status_code == 201
    )
    # Sessions with ratings and a canary note, and a tombstone.
    session_ids = []
    for _ in range(3):
        body = session_body(notes=CANARY_NOTE)
        assert client.post("/v1/sessions", json=body, headers=zelda.headers).status_code == 201
        session_ids.append(body["id"])
    assert client.delete(f"/v1/sessions/{session_ids[0]}", headers=zelda.headers).status_code == 204
    key_headers, _ = api_key(client, zelda, "sessions:read")
    assert client.post("/v1/invites", headers=zelda.headers).status_code == 201
    assert client.post("/v1/auth/password-reset", json={"email": zelda.email}).status_code == 202
    shared = client.post("/v1/report-links", json={}, headers=zelda.headers)
    assert shared.status_code == 201
    shared_path = "/r/" + shared.json()["url"].rsplit("/r/", 1)[1]
    assert client.get(shared_path).status_code == 200

    needles = [zelda.email, CANARY_NAME, CANARY_NOTE, zelda.id, uuid.UUID(zelda.id).hex]
    needles += session_ids + [uuid.UUID(s).hex for s in session_ids]
    before = [table for table, row in _every_row(app) if _traces(row, needles)]
    assert {
        "user_account",
        "release_session",
        "rating",
        "api_key",
        "coach_grant",
        "report_link",
    } <= set(before)

    assert _erase(client, zelda, "not the password").status_code == 403
    assert client.get("/v1/me", headers=zelda.headers).status_code == 200  # nothing erased
    response = _erase(client, zelda, zelda.password)
    assert response.status_code == 204

    # Nothing of hers remains, but her bare id in the grant.ended delivery to her coach.
    grant_ended = []
    for table, row in _every_row(app):
        found = _traces(row, needles)
        if table == "webhook_delivery" and row["event_type"] == "grant.ended":
            grant_ended.append(row)
            assert set(found) <= {zelda.id, uuid.UUID(zelda.id).hex}, (table, found)
            continue
        assert not found, (table, found, row)
    assert len(grant_ended) == 1
    payload = json.loads(str(grant_ended[0]["payload"]))
    assert payload["data"]["client_id"] == zelda.id
    assert payload["data"]["reason"] == "account_deleted"

    # Her credentials are gone; the email registers again as a new, empty account.
    assert client.get("/v1/me", headers=zelda.headers).status_code == 401
    assert client.get("/v1/sessions", headers=key_headers).status_code == 401
    assert client.get(shared_path).status_code == 404
    assert (
        client.post("/v1/sessions", json=session_body(), headers=zelda.headers).status_code == 401
    )
    login = {"username": zelda.email, "password": zelda.password}
    assert client.post("/v1/auth/token", data=login).status_code == 401
    again = client.post(
        "/v1/auth/register",
        json={"email": zelda.email, "password": zelda.password, "display_name": "New"},
    )
    assert again.status_code == 201
    assert again.json()["id"] != zelda.id
    token = client.post("/v1/auth/token", data=login).json()["access_token"]
    fresh = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/sessions", headers=fresh).json()["items"] == []
    # Her coach no longer lists or reads her; her pupil's data is untouched.
    roster = client.get("/v1/clients", headers=coach.headers).json()["items"]
    assert zelda.id not in [item["client"]["id"] for item in roster]
    assert client.get(f"/v1/clients/{zelda.id}/sessions", headers=coach.headers).status_code == 404
    assert len(client.get("/v1/sessions", headers=pupil.headers).json()["items"]) == 1


def test_erasure_needs_an_access_token(client: TestClient, alice: Person) -> None:
    key_headers, _ = api_key(client, alice, "sessions:read", "sessions:write")
    response = client.request(
        "DELETE", "/v1/me", json={"password": alice.password}, headers=key_headers
    )
    assert response.status_code == 403
    assert client.get("/v1/me", headers=alice.headers).status_code == 200


def test_writes_racing_an_erasure_commit_before_it_or_get_401(tmp_path) -> None:
    """Against a real server: creates sent while the account is erased are each either
    acknowledged before the erasure (and erased with the rest) or refused with 401; never a
    500, and nothing of the person remains."""
    database_url, drop = fresh_database(tmp_path)
    server = ServerProcess(database_url, tmp_path / "server.log")
    server.start()
    try:
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery staple"
        base = server.base_url
        body = {"email": email, "password": password, "display_name": CANARY_NAME}
        user_id = httpx.post(f"{base}/v1/auth/register", json=body).json()["id"]
        token = httpx.post(
            f"{base}/v1/auth/token", data={"username": email, "password": password}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:

            def create(_: int) -> int:
                return http.post("/v1/sessions", json=session_body()).status_code

            with ThreadPoolExecutor(8) as pool:
                creates = [pool.submit(create, n) for n in range(40)]
                erased = http.request("DELETE", "/v1/me", json={"password": password})
                statuses = [future.result() for future in creates]
        assert erased.status_code == 204
        assert set(statuses) <= {201, 401}, statuses
        after = httpx.post(f"{base}/v1/sessions", json=session_body(), headers=headers)
        assert after.status_code == 401
        assert "Traceback" not in server.log_path.read_text()
    finally:
        server.stop()
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            for table in ("release_session", "rating", "user_account"):
                count = connection.execute(
                    text(
                        f"SELECT count(*) FROM {table} WHERE CAST({_id_column(table)} AS TEXT) "
                        "IN (:dashed, :hex)"
                    ),
                    {"dashed": user_id, "hex": uuid.UUID(user_id).hex},
                ).scalar()
                assert count == 0, table
    finally:
        engine.dispose()
        drop()


def _id_column(table: str) -> str:
    return "id" if table == "user_account" else "user_id"
