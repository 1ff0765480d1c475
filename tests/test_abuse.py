"""Abuse: login and registration throttling, oversized bodies, page caps, forged or stale
credentials."""

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from conftest import TEST_SECRET, Person, make_settings
from factories import session_body
from fastapi import FastAPI
from fastapi.testclient import TestClient

import api.security
from api.main import create_app
from api.middleware import BodySizeLimitMiddleware
from api.state import app_state

PROBLEM = "application/problem+json"
MIB = 1024 * 1024


def _login(client: TestClient, email: str, password: str) -> Any:
    return client.post("/v1/auth/token", data={"username": email, "password": password})


# --- login and registration throttling -----------------------------------------------------


def test_the_eleventh_login_attempt_in_a_minute_is_429_with_retry_after(
    client: TestClient, alice: Person
) -> None:
    # The fixture already logged alice in once: attempts 2..10 are wrong passwords.
    for _ in range(9):
        assert _login(client, alice.email, "wrong password!").status_code == 401

    refused = _login(client, alice.email, alice.password)  # the right password, the 11th try

    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "access_token" not in refused.text


def test_the_account_limit_ignores_email_case(client: TestClient, alice: Person) -> None:
    for attempt in range(9):
        email = alice.email.upper() if attempt % 2 else alice.email
        assert _login(client, email, "wrong password!").status_code == 401

    assert _login(client, alice.email.upper(), alice.password).status_code == 429


@pytest.fixture
def strict_address_app(database_url: str, app: FastAPI) -> Iterator[FastAPI]:  # noqa: ARG001
    # `app`: the database is migrated, and emptied after the test.
    strict = create_app(make_settings(database_url, login_limit_per_address="3/minute"))
    yield strict
    app_state(strict).engine.dispose()


def test_the_per_address_limit_is_configurable(strict_address_app: FastAPI) -> None:
    with TestClient(strict_address_app) as client:
        # Three different (unknown) accounts from one address: within the limit.
        for _ in range(3):
            answer = _login(client, f"{uuid.uuid4().hex}@example.com", "whatever password")
            assert answer.status_code == 401

        refused = _login(client, f"{uuid.uuid4().hex}@example.com", "whatever password")

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1


def _limiter_keys(app: FastAPI) -> list[str]:
    """Every key the limiter's store holds (the in-memory store of the tests)."""
    storage = app_state(app).login_limiter._limiter.storage
    return [*storage.events, *storage.storage]


def test_a_megabyte_username_is_422_and_never_reaches_the_limiter(
    client: TestClient, app: FastAPI
) -> None:
    answer = _login(client, "x" * 1_000_000 + "@example.com", "whatever password")

    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert ["body", "username"] in [error["loc"] for error in answer.json()["errors"]]
    assert _limiter_keys(app) == []


def test_a_321_character_email_is_422_and_never_reaches_the_limiter(
    client: TestClient, app: FastAPI
) -> None:
    email = "a" * 309 + "@example.com"
    assert len(email) == 321
    body = {"email": email, "password": "long enough secret", "display_name": "Long"}

    registered = client.post("/v1/auth/register", json=body)
    login = _login(client, email, "long enough secret")

    assert (registered.status_code, login.status_code) == (422, 422)
    assert ["body", "email"] in [error["loc"] for error in registered.json()["errors"]]
    assert _limiter_keys(app) == []


def test_the_account_limit_keys_a_digest_not_the_email(client: TestClient, app: FastAPI) -> None:
    email = "b" * 308 + "@example.com"  # 320 characters: the longest accepted
    assert _login(client, email, "whatever password").status_code == 401

    keys = _limiter_keys(app)
    assert len(keys) == 2  # the account's and the address's
    assert all(len(key) < 120 for key in keys)
    assert not any("bbbbbbbb" in key or "example.com" in key for key in keys)


@pytest.fixture
def strict_register_app(database_url: str, app: FastAPI) -> Iterator[FastAPI]:  # noqa: ARG001
    # `app`: the database is migrated, and emptied after the test.
    strict = create_app(make_settings(database_url, register_limit_per_address="3/minute"))
    yield strict
    app_state(strict).engine.dispose()


def _new_account(email: str | None = None) -> dict[str, str]:
    email = email or f"{uuid.uuid4().hex}@example.com"
    return {"email": email, "password": "long enough secret", "display_name": "New"}


def test_registration_is_limited_per_address(strict_register_app: FastAPI) -> None:
    with TestClient(strict_register_app) as client:
        # Refused before it is counted: an invalid body, then three registrations.
        assert client.post("/v1/auth/register", json={"email": "x"}).status_code == 422
        for _ in range(3):
            assert client.post("/v1/auth/register", json=_new_account()).status_code == 201
        refused_body = _new_account()
        refused = client.post("/v1/auth/register", json=refused_body)
        # Logging in is counted apart: the 4th registration's limit does not stop it.
        login = _login(client, refused_body["email"], refused_body["password"])

    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["status"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert login.status_code == 401  # the refused registration stored no account


def test_registration_answers_503_when_the_limiter_store_is_down(settings: Any) -> None:
    broken = make_settings(settings.database_url, rate_limit_storage_url="redis://127.0.0.1:1")
    with TestClient(create_app(broken), raise_server_exceptions=False) as client:
        response = client.post("/v1/auth/register", json=_new_account())

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["Retry-After"] == "5"


def test_an_unknown_email_still_costs_one_password_verification(
    client: TestClient, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real_verify = api.security._password_hash.verify

    def counting_verify(password: str, hashed: str) -> bool:
        verified.append(hashed)
        return real_verify(password, hashed)

    monkeypatch.setattr(api.security._password_hash, "verify", counting_verify)

    unknown = _login(client, "nobody@example.com", "some password")
    wrong = _login(client, alice.email, "some password")

    assert verified == [api.security._DUMMY_HASH, verified[1]]
    assert verified[1] != api.security._DUMMY_HASH  # alice's own hash
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()  # nothing tells the two apart


# --- request bodies ------------------------------------------------------------------------


def test_a_body_over_1_mib_is_413(client: TestClient, alice: Person) -> None:
    body = session_body(notes="x" * (MIB + 1))

    answer = client.post("/v1/sessions", json=body, headers=alice.headers)

    assert answer.status_code == 413
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["status"] == 413


def test_a_chunked_body_over_1_mib_is_413(client: TestClient, alice: Person) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):  # 20 x 64 KiB = 1.25 MiB, without a Content-Length
            yield b" " * 65536

    answer = client.post(
        "/v1/sessions",
        content=chunks(),
        headers={**alice.headers, "Content-Type": "application/json"},
    )

    assert answer.status_code == 413
    assert answer.headers["content-type"] == PROBLEM
    assert client.get("/v1/sessions", headers=alice.headers).json()["items"] == []


def _asgi_request(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": "/v1/sessions",
        "raw_path": b"/v1/sessions",
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
    }


async def _run(app: Any, scope: dict[str, Any], chunks: list[bytes]) -> tuple[list[Any], int]:
    """Drive an ASGI app; returns the messages it sent and how many body chunks it pulled."""
    pulled = 0
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        more = pulled < len(chunks)
        return {"type": "http.request", "body": chunks[pulled - 1], "more_body": more}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent, pulled


@pytest.mark.anyio
async def test_a_declared_oversized_body_is_refused_without_reading_it() -> None:
    reached: list[bool] = []

    async def downstream(_scope: Any, receive: Any, _send: Any) -> None:
        reached.append(True)
        await receive()

    middleware = BodySizeLimitMiddleware(downstream, max_body_bytes=MIB)
    scope = _asgi_request([(b"content-length", str(MIB + 1).encode())])

    sent, pulled = await _run(middleware, scope, [b"x" * 65536] * 17)

    assert pulled == 0  # not one byte read
    assert reached == []
    assert sent[0]["status"] == 413


@pytest.mark.anyio
async def test_a_streamed_body_is_cut_off_as_soon_as_it_passes_the_limit(app: FastAPI) -> None:
    chunk = b" " * 65536
    scope = _asgi_request([(b"content-type", b"application/json")])

    sent, pulled = await _run(app, scope, [chunk] * 64)  # 4 MiB offered

    assert sent[0]["status"] == 413
    # 1 MiB / 64 KiB = 16 chunks fit; the 17th passes the limit and nothing more is read.
    assert pulled == 17


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- pagination caps -----------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "status"), [(0, 422), (1, 200), (200, 200), (201, 422)])
def test_list_limit_is_1_to_200(client: TestClient, alice: Person, limit: int, status: int) -> None:
    answer = client.get("/v1/sessions", params={"limit": limit}, headers=alice.headers)

    assert answer.status_code == status
    if status == 422:
        assert answer.headers["content-type"] == PROBLEM


# --- access tokens ------------------------------------------------------------------------


def _claims(person: Person, **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {"sub": person.id, "iat": now, "exp": now + timedelta(minutes=5), "typ": "access"}
    claims.update(overrides)
    return claims


def _unsigned(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]


FORGERIES: dict[str, Callable[[Person], str]] = {
    "alg none": lambda person: _unsigned(_claims(person)),
    "wrong key": lambda person: jwt.encode(_claims(person), "another-secret-" * 4, "HS256"),
    "expired": lambda person: jwt.encode(
        _claims(person, exp=datetime.now(UTC) - timedelta(seconds=1)), TEST_SECRET, "HS256"
    ),
    "not an access token": lambda person: jwt.encode(
        _claims(person, typ="refresh"), TEST_SECRET, "HS256"
    ),
    "no expiry": lambda person: jwt.encode(
        {key: value for key, value in _claims(person).items() if key != "exp"},
        TEST_SECRET,
        "HS256",
    ),
    "garbage": lambda _person: "not-a-jwt",
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_or_stale_token_is_401(client: TestClient, alice: Person, forgery: str) -> None:
    token = FORGERIES[forgery](alice)

    answer = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})

    assert answer.status_code == 401
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["WWW-Authenticate"] == "Bearer"


# --- API keys -----------------------------------------------------------------------------


def _api_key(client: TestClient, person: Person, scopes: list[str]) -> dict[str, Any]:
    created = client.post(
        "/v1/api-keys", json={"name": "dashboard", "scopes": scopes}, headers=person.headers
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_a_revoked_api_key_is_401_on_the_next_request(client: TestClient, alice: Person) -> None:
    key = _api_key(client, alice, ["sessions:read"])
    key_headers = {"X-API-Key": key["key"]}
    assert client.get("/v1/sessions", headers=key_headers).status_code == 200

    assert client.delete(f"/v1/api-keys/{key['id']}", headers=alice.headers).status_code == 204

    answer = client.get("/v1/sessions", headers=key_headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == PROBLEM


def test_an_api_key_cannot_manage_api_keys(client: TestClient, alice: Person) -> None:
    key = _api_key(client, alice, ["sessions:read", "sessions:write"])
    key_headers = {"X-API-Key": key["key"]}

    created = client.post(
        "/v1/api-keys", json={"name": "escalate", "scopes": ["clients:read"]}, headers=key_headers
    )
    listed = client.get("/v1/api-keys", headers=key_headers)
    revoked = client.delete(f"/v1/api-keys/{key['id']}", headers=key_headers)

    assert (created.status_code, listed.status_code, revoked.status_code) == (403, 403, 403)
    keys = client.get("/v1/api-keys", headers=alice.headers).json()["items"]
    assert [item["name"] for item in keys] == ["dashboard"]


def test_an_api_key_is_limited_to_its_scopes(client: TestClient, alice: Person) -> None:
    key = _api_key(client, alice, ["sessions:read"])

    answer = client.post("/v1/sessions", json=session_body(), headers={"X-API-Key": key["key"]})

    assert answer.status_code == 403
    assert client.get("/v1/sessions", headers=alice.headers).json()["items"] == []


def test_text_with_a_nul_character_is_refused(client: TestClient, alice: Person) -> None:
    answer = client.post(
        "/v1/sessions", json=session_body(notes="before\x00after"), headers=alice.headers
    )

    assert answer.status_code == 400
    assert answer.headers["content-type"] == PROBLEM
    assert client.get("/v1/sessions", headers=alice.headers).json()["items"] == []


def test_login_answers_503_when_the_limiter_store_is_down(settings) -> None:
    """A shared limiter store (Redis) that cannot be reached: 503 with Retry-After, not 500."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests.conftest import make_settings

    broken = make_settings(settings.database_url, rate_limit_storage_url="redis://127.0.0.1:1")
    with TestClient(create_app(broken), raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/auth/token", data={"username": "a@example.com", "password": "whatever123"}
        )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
