"""Webhooks: subscriptions, the outbox, signed delivery to a real receiver, retries, SSRF."""

import base64
import json
import random
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, update
from sqlmodel import Session, select

from api.config import Settings
from api.db import write_lock, write_transaction
from api.errors import Unprocessable
from api.main import create_app
from api.services import webhook_worker
from api.services import webhooks as webhooks_service
from api.services.webhook_outbox import delete_client_deliveries, enqueue_grant_ended
from api.services.webhook_targets import UnsafeTarget, check_target, public_addresses
from api.services.webhook_worker import claim_due, deliver_due, retry_delay
from api.state import app_state
from models.coaching import Grant
from models.release_session import ReleaseSession
from models.user import User
from models.webhook import WebhookDelivery
from tests.conftest import Person, make_settings
from tests.factories import link, session_body
from tests.webhook_support import Receiver, grant, revoke, verify_signature


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def coach(make_person: Callable[..., Person]) -> Person:
    return make_person("Coach Carla")


def create_webhook(client: TestClient, person: Person, url: str, **extra: object) -> dict:
    response = client.post("/v1/webhooks", json={"url": url, **extra}, headers=person.headers)
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(client: TestClient, person: Person, webhook_id: str) -> list[dict]:
    response = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=person.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def run_worker(app: FastAPI, now: datetime | None = None) -> int:
    return deliver_due(app_state(app).engine, app_state(app).settings, now)


def run_worker_until_idle(app: FastAPI, now: datetime | None = None) -> None:
    while run_worker(app, now):
        pass


def stored_payloads(app: FastAPI) -> dict[str, str | None]:
    """Each delivery's stored body, by delivery id: what the table keeps, not what the API shows."""
    with Session(app_state(app).engine) as db:
        return {
            str(delivery_id): payload
            for delivery_id, payload in db.execute(
                select(WebhookDelivery.id, WebhookDelivery.payload)
            )
        }


# --- subscriptions -------------------------------------------------------------------------


def test_create_shows_the_secret_once_and_lists_without_it(
    client: TestClient, coach: Person
) -> None:
    created = create_webhook(client, coach, "https://dashboard.example/hooks")
    assert created["url"] == "https://dashboard.example/hooks"
    assert created["events"] == [
        "session.created",
        "session.updated",
        "session.deleted",
        "session.flagged",
        "grant.ended",
    ]
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) >= 24
    assert created["created_at"].endswith("Z")

    listed = client.get("/v1/webhooks", headers=coach.headers).json()
    assert listed["next_cursor"] is None
    assert listed["items"] == [{key: created[key] for key in ("id", "url", "events", "created_at")}]


def test_events_subset_is_kept_and_bad_bodies_are_422(client: TestClient, coach: Person) -> None:
    created = create_webhook(
        client, coach, "http://dashboard.example/h", events=["session.deleted"]
    )
    assert created["events"] == ["session.deleted"]
    for body in (
        {"url": "ftp://dashboard.example/h"},
        {"url": "not a url"},
        {"url": "https://dashboard.example/h", "events": ["session.exploded"]},
        {"url": "https://dashboard.example/h", "events": []},
        {"url": "https://dashboard.example/h", "secret": "whsec_mine"},
    ):
        response = client.post("/v1/webhooks", json=body, headers=coach.headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"


def test_delete_and_isolation(client: TestClient, coach: Person, bob: Person) -> None:
    created = create_webhook(client, coach, "https://dashboard.example/hooks")
    path = f"/v1/webhooks/{created['id']}"
    # Another person's webhook does not exist for them.
    assert client.get(f"{path}/deliveries", headers=bob.headers).status_code == 404
    assert client.delete(path, headers=bob.headers).status_code == 404
    assert client.get("/v1/webhooks", headers=bob.headers).json()["items"] == []
    assert (
        client.get(f"/v1/webhooks/{uuid.uuid4()}/deliveries", headers=coach.headers).status_code
        == 404
    )

    assert client.delete(path, headers=coach.headers).status_code == 204
    assert client.delete(path, headers=coach.headers).status_code == 404
    assert client.get("/v1/webhooks", headers=coach.headers).json()["items"] == []


def test_webhooks_need_an_access_token(client: TestClient, coach: Person) -> None:
    assert client.get("/v1/webhooks").status_code == 401
    key = client.post(
        "/v1/api-keys",
        json={"name": "dash", "scopes": ["clients:read"]},
        headers=coach.headers,
    )
    if key.status_code != 201:
        pytest.skip("API keys are not available in this build")
    api_key = {"X-API-Key": key.json()["key"]}
    assert client.get("/v1/webhooks", headers=api_key).status_code == 403


def test_list_is_paginated(client: TestClient, coach: Person) -> None:
    ids = [create_webhook(client, coach, f"https://d.example/{n}")["id"] for n in range(3)]
    first = client.get("/v1/webhooks?limit=2", headers=coach.headers).json()
    second = client.get(
        f"/v1/webhooks?limit=2&cursor={first['next_cursor']}", headers=coach.headers
    ).json()
    assert [item["id"] for item in first["items"] + second["items"]] == ids
    assert second["next_cursor"] is None
    assert client.get("/v1/webhooks?cursor=%%%", headers=coach.headers).status_code == 400


# --- server-side request forgery -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1.2.3:8080/hook",
        "http://10.0.0.5/hook",
        "http://172.16.3.4/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://100.64.0.1/hook",
        "http://localhost:8000/hook",
        "http://LOCALHOST./hook",
    ],
)
def test_private_targets_are_refused(url: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        check_target(url, allow_private=False)
    assert refused.value.errors[0]["loc"] == ["body", "url"]
    check_target(url, allow_private=True)  # development and tests may allow them


def test_a_public_address_is_accepted() -> None:
    check_target("https://93.184.215.14/hook", allow_private=False)


def test_a_name_is_refused_when_any_of_its_addresses_is_private(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {
        "hooks.example.test": ["93.184.215.14"],
        "rebind.example.test": ["93.184.215.14", "127.0.0.1"],
    }

    def fake_getaddrinfo(host: str, port: int, **_kwargs: object) -> list[tuple]:
        if host not in answers:
            raise socket.gaierror("no such host")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    assert public_addresses("https://hooks.example.test/h") == ["93.184.215.14"]
    with pytest.raises(UnsafeTarget):
        public_addresses("https://rebind.example.test/h")
    with pytest.raises(UnsafeTarget):
        public_addresses("https://nowhere.example.test/h")

    # A delivery goes to the address that was checked, with the name in Host and SNI.
    url, headers, extensions = webhook_worker._pinned_request("https://hooks.example.test:8443/h")
    assert url == "https://93.184.215.14:8443/h"
    assert headers == {"host": "hooks.example.test:8443"}
    assert extensions == {"sni_hostname": "hooks.example.test"}


def test_the_api_refuses_private_targets_when_not_allowed(
    coach: Person, settings: Settings
) -> None:
    strict = create_app(make_settings(settings.database_url, webhook_allow_private_targets=False))
    try:
        with TestClient(strict) as strict_client:
            response = strict_client.post(
                "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=coach.headers
            )
            assert response.status_code == 422
            problem = response.json()
            assert problem["errors"][0]["loc"] == ["body", "url"]
            assert "url" in problem["detail"]
            ok = strict_client.post(
                "/v1/webhooks", json={"url": "https://93.184.215.14/h"}, headers=coach.headers
            )
            assert ok.status_code == 201
    finally:
        app_state(strict).engine.dispose()


def test_creating_a_webhook_resolves_its_host_outside_the_write_transaction(
    coach: Person, alice: Person, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow resolver must not hold up other writes: while the host name resolves, the
    webhook's write transaction has not begun (on SQLite, the process's write lock is free)
    and another client's session is created and committed."""
    strict = create_app(make_settings(settings.database_url, webhook_allow_private_targets=False))
    engine = app_state(strict).engine
    in_write = threading.Event()
    real_write_transaction = webhooks_service.write_transaction

    @contextmanager
    def watched_write_transaction(db: Session) -> Iterator[object]:
        with real_write_transaction(db) as connection:
            in_write.set()
            try:
                yield connection
            finally:
                in_write.clear()

    monkeypatch.setattr(webhooks_service, "write_transaction", watched_write_transaction)
    seen: list[dict[str, object]] = []
    real_getaddrinfo = socket.getaddrinfo

    def slow_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        if host != "hooks.example.test":
            return real_getaddrinfo(host, port, *args, **kwargs)  # type: ignore[arg-type]
        # While "resolving", another client writes; it must not have to wait for us.
        created: list[int] = []
        writer = threading.Thread(
            target=lambda: created.append(
                strict_client.post(
                    "/v1/sessions", json=session_body(), headers=alice.headers
                ).status_code
            )
        )
        writer.start()
        writer.join(timeout=10)
        seen.append(
            {
                "in_write_transaction": in_write.is_set(),
                "write_lock_held": getattr(write_lock(engine), "locked", lambda: False)(),
                "other_write": created,
            }
        )
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    try:
        with TestClient(strict) as strict_client:
            response = strict_client.post(
                "/v1/webhooks",
                json={"url": "https://hooks.example.test/h"},
                headers=coach.headers,
            )
            assert response.status_code == 201, response.text
    finally:
        engine.dispose()
    assert seen == [{"in_write_transaction": False, "write_lock_held": False, "other_write": [201]}]


def test_the_target_is_checked_again_at_delivery_time(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    # Allowed when created (tests allow private targets), refused when a strict worker sends.
    hook = create_webhook(client, coach, receiver.url)
    grant(app, coach.id, alice.id)
    client.post("/v1/sessions", json=session_body(), headers=alice.headers)
    strict = make_settings(
        app_state(app).settings.database_url, webhook_allow_private_targets=False
    )
    assert deliver_due(app_state(app).engine, strict) == 1
    assert receiver.received == []
    [delivery] = deliveries(client, coach, hook["id"])
    assert delivery["status"] == "pending"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] is None


# --- delivery ------------------------------------------------------------------------------


def test_signed_delivery_to_a_real_receiver(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    hook = create_webhook(client, coach, receiver.url)
    grant(app, coach.id, alice.id)
    body = session_body()
    created = client.post("/v1/sessions", json=body, headers=alice.headers).json()

    [queued] = deliveries(client, coach, hook["id"])
    assert queued["status"] == "pending"
    assert queued["attempts"] == 0
    assert queued["event_type"] == "session.created"

    assert run_worker(app) == 1
    [got] = receiver.received
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == queued["id"]
    assert got.headers["webhook-timestamp"].isdigit()
    assert verify_signature(hook["secret"], got)
    assert not verify_signature("whsec_" + "A" * 44, got)
    event = got.json
    assert event["type"] == "session.created"
    assert event["timestamp"].endswith("Z")
    assert event["data"] == {"client_id": alice.id, "session_id": body["id"], "session": created}

    [done] = deliveries(client, coach, hook["id"])
    assert (done["status"], done["attempts"], done["last_status_code"]) == ("delivered", 1, 200)
    assert run_worker(app) == 0  # nothing left to do


def test_update_delete_and_batch_events(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    create_webhook(client, coach, receiver.url)
    grant(app, coach.id, alice.id)
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)
    client.post("/v1/sessions", json=body, headers=alice.headers)  # a replay: no event
    patched = client.patch(
        f"/v1/sessions/{body['id']}", json={"notes": "better"}, headers=alice.headers
    ).json()
    client.patch(f"/v1/sessions/{body['id']}", json={"notes": "better"}, headers=alice.headers)
    # Sent before the deletion: once it is deleted, a session's queued events are not.
    while run_worker(app):
        pass
    assert client.delete(f"/v1/sessions/{body['id']}", headers=alice.headers).status_code == 204
    batch = [session_body(), session_body(), {"started_at": "nonsense"}]
    client.post("/v1/sessions/batch", json={"sessions": batch}, headers=alice.headers)

    while run_worker(app):
        pass
    events = sorted((r.json for r in receiver.received), key=lambda e: (e["timestamp"], e["type"]))
    kinds = [(e["type"], e["data"]["session_id"]) for e in events]
    assert sorted(kinds) == sorted(
        [
            ("session.created", body["id"]),
            ("session.updated", body["id"]),
            ("session.deleted", body["id"]),
            ("session.created", batch[0]["id"]),
            ("session.created", batch[1]["id"]),
        ]
    )
    by_type = {e["type"]: e for e in events if e["data"]["session_id"] == body["id"]}
    assert by_type["session.updated"]["data"]["session"] == patched
    assert by_type["session.deleted"]["data"]["session"] is None


def test_only_subscribed_events_and_only_live_coaches(
    client: TestClient,
    app: FastAPI,
    coach: Person,
    alice: Person,
    bob: Person,
    receiver: Receiver,
) -> None:
    deletes_only = create_webhook(client, coach, receiver.url, events=["session.deleted"])
    bobs = create_webhook(client, bob, receiver.url)  # bob coaches nobody
    grant(app, coach.id, alice.id)
    client.post("/v1/sessions", json=session_body(), headers=alice.headers)
    assert deliveries(client, coach, deletes_only["id"]) == []
    assert deliveries(client, bob, bobs["id"]) == []
    # Bob's own sessions reach no one: nobody coaches him.
    client.post("/v1/sessions", json=session_body(), headers=bob.headers)
    assert deliveries(client, bob, bobs["id"]) == []


def test_fails_twice_then_succeeds(
    client: TestClient, app: FastAPI, coach: Person, alice: Person
) -> None:
    receiver = Receiver(statuses=[500, 503, 200])
    try:
        hook = create_webhook(client, coach, receiver.url)
        grant(app, coach.id, alice.id)
        client.post("/v1/sessions", json=session_body(), headers=alice.headers)
        start = datetime.now(UTC)

        assert run_worker(app, start) == 1
        [first] = deliveries(client, coach, hook["id"])
        assert (first["status"], first["attempts"], first["last_status_code"]) == (
            "pending",
            1,
            500,
        )
        # The retry is not due yet (base 30 s, at least 24 s with jitter).
        assert run_worker(app, start) == 0
        assert run_worker(app, start + timedelta(hours=1)) == 1
        assert run_worker(app, start + timedelta(hours=2)) == 1
        assert run_worker(app, start + timedelta(hours=3)) == 0

        assert len(receiver.received) == 3
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
        assert all(verify_signature(hook["secret"], r) for r in receiver.received)
        [done] = deliveries(client, coach, hook["id"])
        assert (done["status"], done["attempts"], done["last_status_code"]) == (
            "delivered",
            3,
            200,
        )
        assert done["next_attempt_at"] is None
    finally:
        receiver.close()


def test_gives_up_after_about_a_day(
    client: TestClient, app: FastAPI, coach: Person, alice: Person
) -> None:
    receiver = Receiver(statuses=[500])
    try:
        hook = create_webhook(client, coach, receiver.url)
        grant(app, coach.id, alice.id)
        client.post("/v1/sessions", json=session_body(), headers=alice.headers)
        start = datetime.now(UTC)
        run_worker(app, start)
        [pending] = deliveries(client, coach, hook["id"])
        due = datetime.fromisoformat(pending["next_attempt_at"])
        # The first retry: 30 s * 2^0, ±20 % jitter -> between 24 and 36 s after the attempt.
        assert start + timedelta(seconds=23) <= due <= start + timedelta(seconds=37)

        run_worker(app, start + timedelta(hours=25))  # past the 24-hour window
        [failed] = deliveries(client, coach, hook["id"])
        assert (failed["status"], failed["attempts"], failed["last_status_code"]) == (
            "failed",
            2,
            500,
        )
        assert run_worker(app, start + timedelta(days=3)) == 0
    finally:
        receiver.close()


def test_retry_delay_doubles_with_bounded_jitter() -> None:
    rng = random.Random(7)
    for attempts, nominal in [(1, 30), (2, 60), (3, 120), (10, 30 * 2**9)]:
        delay = retry_delay(30, attempts, rng)
        assert nominal * 0.8 <= delay <= nominal * 1.2


def test_a_timeout_is_a_failed_attempt(
    client: TestClient, app: FastAPI, coach: Person, alice: Person
) -> None:
    receiver = Receiver(hold=threading.Event())
    try:
        hook = create_webhook(client, coach, receiver.url)
        grant(app, coach.id, alice.id)
        client.post("/v1/sessions", json=session_body(), headers=alice.headers)
        impatient = make_settings(app_state(app).settings.database_url, webhook_timeout_seconds=0.2)
        assert deliver_due(app_state(app).engine, impatient) == 1
        [delivery] = deliveries(client, coach, hook["id"])
        assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
            "pending",
            1,
            None,
        )
    finally:
        receiver.close()


def test_revoked_grant_stops_deliveries_even_queued_ones(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    hook = create_webhook(client, coach, receiver.url)
    grant_id = grant(app, coach.id, alice.id)
    client.post("/v1/sessions", json=session_body(), headers=alice.headers)  # queued
    revoke(app, grant_id)
    client.post("/v1/sessions", json=session_body(), headers=alice.headers)  # not queued

    assert run_worker(app) == 0
    assert receiver.received == []
    [cancelled] = deliveries(client, coach, hook["id"])
    assert (cancelled["status"], cancelled["attempts"]) == ("failed", 0)
    assert stored_payloads(app) == {cancelled["id"]: None}


def test_revocation_between_retries_stops_them(
    client: TestClient, app: FastAPI, coach: Person, alice: Person
) -> None:
    receiver = Receiver(statuses=[500, 200])
    try:
        hook = create_webhook(client, coach, receiver.url)
        grant_id = grant(app, coach.id, alice.id)
        client.post("/v1/sessions", json=session_body(), headers=alice.headers)
        start = datetime.now(UTC)
        run_worker(app, start)
        revoke(app, grant_id)
        run_worker(app, start + timedelta(hours=1))
        assert len(receiver.received) == 1
        [delivery] = deliveries(client, coach, hook["id"])
        assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    finally:
        receiver.close()


def test_deleting_the_webhook_drops_its_deliveries(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    hook = create_webhook(client, coach, receiver.url)
    grant(app, coach.id, alice.id)
    client.post("/v1/sessions", json=session_body(), headers=alice.headers)
    client.delete(f"/v1/webhooks/{hook['id']}", headers=coach.headers)
    assert run_worker(app) == 0
    assert receiver.received == []


def test_a_rolled_back_write_queues_nothing(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, bob: Person
) -> None:
    create_webhook(client, coach, "https://d.example/h")
    grant(app, coach.id, alice.id)
    body = session_body()
    assert client.post("/v1/sessions", json=body, headers=bob.headers).status_code == 201
    # Alice tries the same id: 409, nothing of hers was written, no event either.
    assert client.post("/v1/sessions", json=body, headers=alice.headers).status_code == 409
    with Session(app_state(app).engine) as db:
        assert db.exec(select(WebhookDelivery)).all() == []


# --- deleted sessions and stored payloads ---------------------------------------------------

CANARY = "canary: tender near the old scar"


def test_a_session_deleted_before_delivery_never_sends_its_content(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    hook = create_webhook(client, coach, receiver.url)
    grant(app, coach.id, alice.id)
    body = session_body(notes=CANARY)
    client.post("/v1/sessions", json=body, headers=alice.headers)
    patched = client.patch(
        f"/v1/sessions/{body['id']}", json={"notes": CANARY + " (edited)"}, headers=alice.headers
    )
    assert patched.status_code == 200
    assert client.delete(f"/v1/sessions/{body['id']}", headers=alice.headers).status_code == 204
    # The deletion itself withdraws the queued content: no worker needs to run for it to go.
    kept = [payload for payload in stored_payloads(app).values() if payload is not None]
    assert len(stored_payloads(app)) == 3  # created, updated, deleted
    assert [json.loads(payload)["type"] for payload in kept] == ["session.deleted"]

    run_worker_until_idle(app)
    assert [(r.json["type"], r.json["data"]) for r in receiver.received] == [
        ("session.deleted", {"client_id": alice.id, "session_id": body["id"], "session": None})
    ]
    assert all(CANARY.encode() not in r.body for r in receiver.received)
    # The log shows the dropped events as failed, never tried; no body is kept for any of them.
    log = {item["event_type"]: item for item in deliveries(client, coach, hook["id"])}
    assert {kind: (item["status"], item["attempts"]) for kind, item in log.items()} == {
        "session.created": ("failed", 0),
        "session.updated": ("failed", 0),
        "session.deleted": ("delivered", 1),
    }
    assert log["session.created"]["last_status_code"] is None
    assert stored_payloads(app) == dict.fromkeys((item["id"] for item in log.values()), None)


def test_a_retry_after_the_session_was_deleted_is_never_sent(
    client: TestClient, app: FastAPI, coach: Person, alice: Person
) -> None:
    receiver = Receiver(statuses=[500, 200])
    try:
        hook = create_webhook(client, coach, receiver.url)
        grant(app, coach.id, alice.id)
        body = session_body(notes=CANARY)
        client.post("/v1/sessions", json=body, headers=alice.headers)
        start = datetime.now(UTC)
        assert run_worker(app, start) == 1  # the receiver fails: a retry is due later
        [first] = receiver.received
        assert first.json["type"] == "session.created"

        client.delete(f"/v1/sessions/{body['id']}", headers=alice.headers)
        run_worker_until_idle(app, start + timedelta(hours=1))
        run_worker_until_idle(app, start + timedelta(days=2))
        assert [r.json["type"] for r in receiver.received] == [
            "session.created",
            "session.deleted",
        ]
        log = {item["event_type"]: item for item in deliveries(client, coach, hook["id"])}
        created = log["session.created"]
        # Dropped: failed, with the one attempt it had and that attempt's answer.
        assert (created["status"], created["attempts"], created["last_status_code"]) == (
            "failed",
            1,
            500,
        )
        assert created["next_attempt_at"] is None
        assert stored_payloads(app)[created["id"]] is None
    finally:
        receiver.close()


def _mark_deleted_without_withdrawing(app: FastAPI, session_id: str) -> None:
    """The session is gone while its events are still queued (as if by a path that does not
    withdraw them, e.g. a future purge): the worker's own checks must drop them."""
    with Session(app_state(app).engine) as db:
        db.execute(
            update(ReleaseSession)
            .where(ReleaseSession.id == uuid.UUID(session_id))  # type: ignore[arg-type]
            .values(deleted_at=datetime.now(UTC), notes=None)
        )
        db.commit()


def test_the_claim_drops_an_event_of_a_session_deleted_since(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    hook = create_webhook(client, coach, receiver.url)
    grant(app, coach.id, alice.id)
    body = session_body(notes=CANARY)
    client.post("/v1/sessions", json=body, headers=alice.headers)
    _mark_deleted_without_withdrawing(app, body["id"])

    settings = app_state(app).settings
    assert claim_due(app_state(app).engine, settings, datetime.now(UTC), 10) == []
    assert run_worker(app) == 0
    assert receiver.received == []
    [dropped] = deliveries(client, coach, hook["id"])
    assert (dropped["status"], dropped["attempts"]) == ("failed", 0)
    assert stored_payloads(app) == {dropped["id"]: None}


def test_a_deletion_between_claim_and_send_stops_the_send(
    client: TestClient,
    app: FastAPI,
    coach: Person,
    alice: Person,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = create_webhook(client, coach, receiver.url)
    grant(app, coach.id, alice.id)
    withdrawn, unwithdrawn = session_body(notes=CANARY), session_body(notes=CANARY)
    for body in (withdrawn, unwithdrawn):
        client.post("/v1/sessions", json=body, headers=alice.headers)
    real_claim_due = webhook_worker.claim_due

    def claim_then_delete(*args: object, **kwargs: object) -> list[webhook_worker.Claimed]:
        claimed = real_claim_due(*args, **kwargs)  # type: ignore[arg-type]
        # Both are leased, then deleted: one through the API, one without its withdrawal.
        client.delete(f"/v1/sessions/{withdrawn['id']}", headers=alice.headers)
        _mark_deleted_without_withdrawing(app, unwithdrawn["id"])
        return claimed

    monkeypatch.setattr(webhook_worker, "claim_due", claim_then_delete)
    assert run_worker(app) == 2
    assert receiver.received == []
    monkeypatch.undo()
    run_worker_until_idle(app)  # the withdrawn session's deletion event
    assert [r.json["type"] for r in receiver.received] == ["session.deleted"]
    created = [
        item
        for item in deliveries(client, coach, hook["id"])
        if item["event_type"] == "session.created"
    ]
    assert [(item["status"], item["attempts"]) for item in created] == [("failed", 0)] * 2
    assert set(stored_payloads(app).values()) == {None}


def test_a_payload_is_kept_only_while_it_may_be_sent(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    failing = Receiver(statuses=[500])
    try:
        good = create_webhook(client, coach, receiver.url)
        bad = create_webhook(client, coach, failing.url)
        grant(app, coach.id, alice.id)
        client.post("/v1/sessions", json=session_body(notes=CANARY), headers=alice.headers)
        start = datetime.now(UTC)
        [queued_good] = deliveries(client, coach, good["id"])
        [queued_bad] = deliveries(client, coach, bad["id"])
        assert all(CANARY in (payload or "") for payload in stored_payloads(app).values())

        assert run_worker(app, start) == 2
        [delivered] = deliveries(client, coach, good["id"])
        [retrying] = deliveries(client, coach, bad["id"])
        assert (delivered["id"], delivered["status"], delivered["attempts"]) == (
            queued_good["id"],
            "delivered",
            1,
        )
        assert (retrying["status"], retrying["attempts"]) == ("pending", 1)
        payloads = stored_payloads(app)
        assert payloads[delivered["id"]] is None  # delivered: gone
        assert CANARY in (payloads[retrying["id"]] or "")  # still to be sent: kept

        run_worker(app, start + timedelta(hours=25))  # past the retry window
        [failed] = deliveries(client, coach, bad["id"])
        assert (failed["id"], failed["status"], failed["attempts"], failed["last_status_code"]) == (
            queued_bad["id"],
            "failed",
            2,
            500,
        )
        assert stored_payloads(app) == {delivered["id"]: None, failed["id"]: None}
    finally:
        failing.close()


# --- restarts ------------------------------------------------------------------------------


def test_a_restart_loses_nothing(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    hook = create_webhook(client, coach, receiver.url)
    grant(app, coach.id, alice.id)
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)  # queued; no worker runs

    # "Restart": a new app (new engine, new process state) with its worker on.
    restarted = create_app(
        make_settings(
            app_state(app).settings.database_url,
            webhook_worker_enabled=True,
            webhook_worker_poll_seconds=0.05,
        )
    )
    try:
        with TestClient(restarted):
            assert receiver.got_request.wait(20), "the restarted worker delivered nothing"
        # The lifespan stopped the worker on shutdown; the result was recorded first.
    finally:
        app_state(restarted).engine.dispose()
    [got] = receiver.received
    assert got.json["data"]["session_id"] == body["id"]
    [done] = deliveries(client, coach, hook["id"])
    assert (done["status"], done["attempts"]) == ("delivered", 1)


def test_a_crash_mid_delivery_is_retried_after_the_lease(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    hook = create_webhook(client, coach, receiver.url)
    grant(app, coach.id, alice.id)
    client.post("/v1/sessions", json=session_body(), headers=alice.headers)
    start = datetime.now(UTC)
    settings = app_state(app).settings
    # A worker claims the delivery and dies before sending.
    [claimed] = claim_due(app_state(app).engine, settings, start, 10)
    assert run_worker(app, start) == 0  # leased: nobody else takes it meanwhile
    lease = timedelta(seconds=webhook_worker.lease_seconds(settings))
    assert run_worker(app, start + lease + timedelta(seconds=1)) == 1
    [got] = receiver.received
    assert got.headers["webhook-id"] == str(claimed.id)
    [done] = deliveries(client, coach, hook["id"])
    assert (done["status"], done["attempts"]) == ("delivered", 1)


def test_deliveries_log_is_paginated_newest_first(
    client: TestClient, app: FastAPI, coach: Person, alice: Person
) -> None:
    hook = create_webhook(client, coach, "https://d.example/h")
    grant(app, coach.id, alice.id)
    bodies = [session_body() for _ in range(3)]
    for body in bodies:
        client.post("/v1/sessions", json=body, headers=alice.headers)
    path = f"/v1/webhooks/{hook['id']}/deliveries"
    first = client.get(f"{path}?limit=2", headers=coach.headers).json()
    second = client.get(f"{path}?limit=2&cursor={first['next_cursor']}", headers=coach.headers)
    items = first["items"] + second.json()["items"]
    assert len(items) == 3
    assert second.json()["next_cursor"] is None
    assert len({item["id"] for item in items}) == 3


def test_concurrent_workers_send_each_delivery_once(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    hook = create_webhook(client, coach, receiver.url)
    grant(app, coach.id, alice.id)
    for _ in range(4):
        client.post("/v1/sessions", json=session_body(), headers=alice.headers)
    rounds = [threading.Thread(target=run_worker, args=(app,)) for _ in range(3)]
    for worker in rounds:
        worker.start()
    for worker in rounds:
        worker.join()
    while run_worker(app):
        pass
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert sorted(ids) == sorted({item["id"] for item in deliveries(client, coach, hook["id"])})
    assert all(item["attempts"] == 1 for item in deliveries(client, coach, hook["id"]))


def test_a_row_locked_by_another_worker_is_skipped(
    client: TestClient, app: FastAPI, coach: Person, alice: Person
) -> None:
    if app_state(app).engine.dialect.name != "postgresql":
        pytest.skip("row locks (FOR UPDATE SKIP LOCKED) are PostgreSQL's; SQLite has one writer")
    create_webhook(client, coach, "https://d.example/h")
    grant(app, coach.id, alice.id)
    client.post("/v1/sessions", json=session_body(), headers=alice.headers)
    now = datetime.now(UTC)
    settings = app_state(app).settings
    with app_state(app).engine.connect() as other_worker:
        transaction = other_worker.begin()
        locked = other_worker.execute(
            select(WebhookDelivery.id).with_for_update(skip_locked=True)
        ).all()
        assert len(locked) == 1
        assert claim_due(app_state(app).engine, settings, now, 10) == []
        transaction.rollback()
    assert len(claim_due(app_state(app).engine, settings, now, 10)) == 1


def test_an_idle_round_does_not_wait_for_the_writers(app: FastAPI) -> None:
    """With nothing due, a poll only reads: it must not queue behind (or block) session writes,
    which on SQLite share one write lock."""
    rounds: list[int] = []
    with Session(app_state(app).engine) as db, write_transaction(db):  # a writer holds the lock
        poller = threading.Thread(target=lambda: rounds.append(run_worker(app)))
        poller.start()
        poller.join(timeout=5)
        assert not poller.is_alive()
    assert rounds == [0]


# --- grant.ended ---------------------------------------------------------------------------


def grant_ended_events(receiver: Receiver) -> list[dict]:
    return [r.json for r in receiver.received if r.json["type"] == "grant.ended"]


def test_a_client_revoking_sends_one_signed_grant_ended(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    hook = create_webhook(client, coach, receiver.url)  # the default: every event
    assert "grant.ended" in hook["events"]
    linked = link(client, coach, alice)
    path = f"/v1/grants/{linked['id']}"
    before = datetime.now(UTC)
    assert client.delete(path, headers=alice.headers).status_code == 204
    assert client.delete(path, headers=alice.headers).status_code == 404  # ended already

    [queued] = deliveries(client, coach, hook["id"])
    assert (queued["event_type"], queued["status"]) == ("grant.ended", "pending")
    assert (queued["client_id"], queued["session_id"]) == (alice.id, None)
    run_worker_until_idle(app)

    [got] = receiver.received
    assert got.headers["webhook-id"] == queued["id"]
    assert verify_signature(hook["secret"], got)
    assert not verify_signature("whsec_" + "A" * 44, got)
    event = got.json
    assert event == {
        "type": "grant.ended",
        "timestamp": event["timestamp"],
        "data": {"client_id": alice.id, "grant_id": linked["id"], "reason": "revoked_by_client"},
    }
    assert before <= datetime.fromisoformat(event["timestamp"]) <= datetime.now(UTC)
    assert event["timestamp"].endswith("Z")
    [done] = deliveries(client, coach, hook["id"])
    assert (done["status"], done["attempts"], done["last_status_code"]) == ("delivered", 1, 200)
    assert stored_payloads(app) == {done["id"]: None}


def test_a_coach_ending_the_link_sends_one_grant_ended(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    hook = create_webhook(client, coach, receiver.url)
    linked = link(client, coach, alice)
    path = f"/v1/clients/{alice.id}"
    assert client.delete(path, headers=coach.headers).status_code == 204
    assert client.delete(path, headers=coach.headers).status_code == 404
    # The client's revoke of the grant the coach already ended is no second end either.
    assert client.delete(f"/v1/grants/{linked['id']}", headers=alice.headers).status_code == 404
    run_worker_until_idle(app)

    [got] = receiver.received
    assert verify_signature(hook["secret"], got)
    assert got.json["data"] == {
        "client_id": alice.id,
        "grant_id": linked["id"],
        "reason": "ended_by_coach",
    }
    assert len(deliveries(client, coach, hook["id"])) == 1


def test_each_ended_link_is_announced_once(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    """A link, ended, made again and ended again, is two links: two events, one per grant."""
    create_webhook(client, coach, receiver.url)
    first = link(client, coach, alice)
    assert client.delete(f"/v1/grants/{first['id']}", headers=alice.headers).status_code == 204
    second = link(client, coach, alice)
    assert client.delete(f"/v1/clients/{alice.id}", headers=coach.headers).status_code == 204
    run_worker_until_idle(app)
    assert sorted(
        (e["data"]["grant_id"], e["data"]["reason"]) for e in grant_ended_events(receiver)
    ) == sorted([(first["id"], "revoked_by_client"), (second["id"], "ended_by_coach")])


def test_concurrent_ends_of_one_link_announce_it_once(
    client: TestClient, coach: Person, alice: Person
) -> None:
    hook = create_webhook(client, coach, "https://d.example/h")
    linked = link(client, coach, alice)
    ends = [(f"/v1/grants/{linked['id']}", alice)] * 3 + [(f"/v1/clients/{alice.id}", coach)] * 3
    start = threading.Barrier(len(ends))
    statuses: list[int] = []
    lock = threading.Lock()

    def end(path: str, person: Person) -> None:
        start.wait()
        status = client.delete(path, headers=person.headers).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=end, args=ending) for ending in ends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [204, 404, 404, 404, 404, 404]
    [announced] = deliveries(client, coach, hook["id"])
    assert announced["event_type"] == "grant.ended"


def test_only_the_coachs_webhooks_subscribed_to_grant_ended_get_it(
    client: TestClient,
    app: FastAPI,
    coach: Person,
    alice: Person,
    bob: Person,
    receiver: Receiver,
) -> None:
    sessions_only = create_webhook(
        client, coach, receiver.url, events=["session.created", "session.deleted"]
    )
    ended_only = create_webhook(client, coach, receiver.url, events=["grant.ended"])
    alices_own = create_webhook(client, alice, receiver.url)  # the client's: not told
    bobs = create_webhook(client, bob, receiver.url)  # another coach of alice's
    link(client, coach, alice)
    link(client, bob, alice)
    assert client.delete(f"/v1/clients/{alice.id}", headers=coach.headers).status_code == 204

    assert deliveries(client, coach, sessions_only["id"]) == []
    assert deliveries(client, alice, alices_own["id"]) == []
    assert deliveries(client, bob, bobs["id"]) == []  # bob's link with alice goes on
    [announced] = deliveries(client, coach, ended_only["id"])
    assert announced["event_type"] == "grant.ended"
    run_worker_until_idle(app)
    assert [r.headers["webhook-id"] for r in receiver.received] == [announced["id"]]
    assert verify_signature(ended_only["secret"], receiver.received[0])


def test_grant_ended_is_retried_until_the_receiver_is_back(
    client: TestClient, app: FastAPI, coach: Person, alice: Person
) -> None:
    """Queued while the receiver is down: retried with backoff and delivered later, though the
    grant has ended; the session event queued before the end is dropped instead."""
    down = Receiver()
    port = down.server.server_address[1]
    url = down.url
    down.close()  # connections to it are refused from now on
    hook = create_webhook(client, coach, url)
    linked = link(client, coach, alice)
    client.post("/v1/sessions", json=session_body(), headers=alice.headers)  # queued
    assert client.delete(f"/v1/grants/{linked['id']}", headers=alice.headers).status_code == 204

    start = datetime.now(UTC)
    assert run_worker(app, start) == 1  # the session event is cancelled, grant.ended tried
    log = {item["event_type"]: item for item in deliveries(client, coach, hook["id"])}
    assert (log["session.created"]["status"], log["session.created"]["attempts"]) == ("failed", 0)
    ended = log["grant.ended"]
    assert (ended["status"], ended["attempts"], ended["last_status_code"]) == ("pending", 1, None)
    assert datetime.fromisoformat(ended["next_attempt_at"]) > start

    back = Receiver(port=port)
    try:
        run_worker_until_idle(app, start + timedelta(hours=1))
        [got] = back.received
        assert got.headers["webhook-id"] == ended["id"]
        assert verify_signature(hook["secret"], got)
        assert got.json["data"]["reason"] == "revoked_by_client"
    finally:
        back.close()
    log = {item["event_type"]: item for item in deliveries(client, coach, hook["id"])}
    assert (log["grant.ended"]["status"], log["grant.ended"]["attempts"]) == ("delivered", 2)


def test_grant_ended_outlives_the_grant_and_the_client_account(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    """Erasure, simulated: in one transaction, `grant.ended` (account_deleted) is queued, then
    the client's deliveries, grants and account are deleted. The event is still delivered,
    and of the client only their bare id remains, in that delivery."""
    hook = create_webhook(client, coach, receiver.url)
    linked = link(client, coach, alice)
    sent, queued = session_body(notes=CANARY), session_body(notes=CANARY)
    client.post("/v1/sessions", json=sent, headers=alice.headers)
    run_worker_until_idle(app)  # delivered: its log entry still names the session
    client.post("/v1/sessions", json=queued, headers=alice.headers)  # pending

    alice_id, grant_id = uuid.UUID(alice.id), uuid.UUID(linked["id"])
    with Session(app_state(app).engine) as db, write_transaction(db):
        enqueue_grant_ended(
            db,
            coach_id=uuid.UUID(coach.id),
            client_id=alice_id,
            grant_id=grant_id,
            reason="account_deleted",
        )
        delete_client_deliveries(db, alice_id)
        db.execute(delete(Grant).where(Grant.client_id == alice_id))  # type: ignore[arg-type]
        db.execute(delete(User).where(User.id == alice_id))  # type: ignore[arg-type]
        db.commit()

    with Session(app_state(app).engine) as db:
        assert db.get(User, alice_id) is None
        assert db.exec(select(Grant)).all() == []
        [left] = db.exec(select(WebhookDelivery)).all()
    assert (left.event_type, left.client_id, left.session_id) == ("grant.ended", alice_id, None)
    assert CANARY not in (left.payload or "")

    run_worker_until_idle(app)
    ended = grant_ended_events(receiver)
    assert ended == [
        {
            "type": "grant.ended",
            "timestamp": ended[0]["timestamp"],
            "data": {"client_id": alice.id, "grant_id": linked["id"], "reason": "account_deleted"},
        }
    ]
    assert verify_signature(hook["secret"], receiver.received[-1])
    [done] = deliveries(client, coach, hook["id"])
    assert (done["event_type"], done["status"], done["client_id"]) == (
        "grant.ended",
        "delivered",
        alice.id,
    )
    assert stored_payloads(app) == {done["id"]: None}


def test_grant_ended_survives_a_restart(
    client: TestClient, app: FastAPI, coach: Person, alice: Person, receiver: Receiver
) -> None:
    hook = create_webhook(client, coach, receiver.url)
    linked = link(client, coach, alice)
    client.delete(f"/v1/grants/{linked['id']}", headers=alice.headers)  # queued; no worker runs
    restarted = create_app(
        make_settings(
            app_state(app).settings.database_url,
            webhook_worker_enabled=True,
            webhook_worker_poll_seconds=0.05,
        )
    )
    try:
        with TestClient(restarted):
            assert receiver.got_request.wait(20), "the restarted worker delivered nothing"
    finally:
        app_state(restarted).engine.dispose()
    [got] = receiver.received
    assert got.json["type"] == "grant.ended"
    [done] = deliveries(client, coach, hook["id"])
    assert (done["status"], done["attempts"]) == ("delivered", 1)
