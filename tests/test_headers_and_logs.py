"""Security headers, CORS from settings, request ids, and logs that keep secrets out."""

import json
import logging
import re
import uuid
from collections.abc import Iterator

import pytest
from conftest import Person, make_settings
from factories import session_body
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.logs import JsonFormatter
from api.main import create_app
from api.state import app_state

DASHBOARD = "https://coach.example.com"


def test_every_answer_says_nosniff(client: TestClient, alice: Person) -> None:
    answers = [
        client.get("/v1/catalog"),
        client.get("/v1/me", headers=alice.headers),
        client.get("/v1/nowhere"),
        client.put("/v1/me", headers=alice.headers),
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 404, 405]
    for answer in answers:
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/api-keys", "GET, POST"),  # two routes, one path
        ("PUT", f"/v1/sessions/{uuid.uuid4()}", "DELETE, GET, PATCH"),
        # A literal path beside a template that could match it: the literal one wins.
        ("PUT", "/v1/sessions/changes", "GET"),
        ("GET", "/v1/sessions/batch", "POST"),
        ("PUT", "/v1/clients/x/export.csv", "GET"),
        ("POST", "/openapi.json", "GET, HEAD"),  # outside the schema, Starlette's own route
    ],
)
def test_a_405_names_every_method_of_the_resource(
    client: TestClient, alice: Person, method: str, path: str, allow: str
) -> None:
    answer = client.request(method, path, headers=alice.headers)

    assert answer.status_code == 405
    assert answer.headers["Allow"] == allow


# --- CORS ----------------------------------------------------------------------------------


@pytest.fixture
def cors_app(database_url: str, app: FastAPI) -> Iterator[FastAPI]:  # noqa: ARG001
    # `app`: the database is migrated, and emptied after the test.
    with_cors = create_app(make_settings(database_url, cors_origins=[DASHBOARD]))
    yield with_cors
    app_state(with_cors).engine.dispose()


def _preflight(client: TestClient, origin: str) -> object:
    return client.options(
        "/v1/sessions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_admits_a_configured_origin_without_credentials(cors_app: FastAPI) -> None:
    with TestClient(cors_app) as client:
        answer = _preflight(client, DASHBOARD)
        simple = client.get("/v1/catalog", headers={"Origin": DASHBOARD})

    assert answer.status_code == 200  # type: ignore[attr-defined]
    assert answer.headers["Access-Control-Allow-Origin"] == DASHBOARD  # type: ignore[attr-defined]
    assert "Access-Control-Allow-Credentials" not in answer.headers  # type: ignore[attr-defined]
    assert simple.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert "Access-Control-Allow-Credentials" not in simple.headers
    assert "X-Request-ID" in simple.headers["Access-Control-Expose-Headers"]


def test_cors_refuses_any_other_origin(cors_app: FastAPI) -> None:
    with TestClient(cors_app) as client:
        answer = _preflight(client, "https://evil.example.com")
        simple = client.get("/v1/catalog", headers={"Origin": "https://evil.example.com"})

    assert answer.status_code == 400  # type: ignore[attr-defined]
    assert "Access-Control-Allow-Origin" not in answer.headers  # type: ignore[attr-defined]
    assert "Access-Control-Allow-Origin" not in simple.headers


def test_without_configured_origins_there_is_no_cors(client: TestClient) -> None:
    simple = client.get("/v1/catalog", headers={"Origin": DASHBOARD})

    assert "Access-Control-Allow-Origin" not in simple.headers


# --- request ids -------------------------------------------------------------------------


def test_a_request_id_is_generated_when_none_is_sent(client: TestClient) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_a_sane_incoming_request_id_is_kept(client: TestClient) -> None:
    answer = client.get("/healthz", headers={"X-Request-ID": "app-4.2:retry_1"})

    assert answer.headers["X-Request-ID"] == "app-4.2:retry_1"


@pytest.mark.parametrize("incoming", ["has spaces", "x" * 129, "quote\"'", "{json}", ""])
def test_an_odd_incoming_request_id_is_replaced(client: TestClient, incoming: str) -> None:
    answer = client.get("/healthz", headers={"X-Request-ID": incoming})

    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"])


def test_errors_carry_the_request_id_too(client: TestClient) -> None:
    answer = client.get("/v1/nowhere", headers={"X-Request-ID": "trace-404"})

    assert answer.status_code == 404
    assert answer.headers["X-Request-ID"] == "trace-404"


# --- logs --------------------------------------------------------------------------------


def _server_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """Every server-side record as the JSON line it becomes (the test client's own are left out)."""
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    ]


def test_one_access_line_per_request_and_no_secrets_in_logs(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    password = "Sup3r-secret passphrase"
    notes = "Private note: left adductor feels like glass"
    with caplog.at_level(logging.DEBUG):
        registered = client.post(
            "/v1/auth/register",
            json={"email": "logs@example.com", "password": password, "display_name": "Lo"},
        )
        login = client.post(
            "/v1/auth/token", data={"username": "logs@example.com", "password": password}
        )
        token = login.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        key = client.post(
            "/v1/api-keys", json={"name": "k", "scopes": ["sessions:write"]}, headers=headers
        ).json()["key"]
        body = session_body(notes=notes)
        created = client.post("/v1/sessions", json=body, headers={"X-API-Key": key})
        read = client.get(f"/v1/sessions/{body['id']}", headers=headers)
        failed = client.post("/v1/sessions", json={"notes": notes}, headers=headers)

    answers = [registered, login, created, read, failed]
    assert [answer.status_code for answer in answers] == [201, 200, 201, 200, 422]
    lines = _server_lines(caplog)
    text = "\n".join(json.dumps(line) for line in lines)
    for secret in (password, token, key, notes, "Bearer", "adductor feels"):
        assert secret not in text
    assert "authorization" not in text.lower()

    access = [line for line in lines if line["logger"] == "releaselog.access"]
    assert len(access) == 6  # one per request: register, token, api key, create, read, 422
    by_id = {line["request_id"]: line for line in access}
    for answer in answers:
        line = by_id[answer.headers["X-Request-ID"]]
        assert line["status"] == answer.status_code
        assert line["method"] == answer.request.method
        assert isinstance(line["duration_ms"], float | int)
        assert line["duration_ms"] >= 0
    # The route template, never the concrete path with its id.
    assert by_id[read.headers["X-Request-ID"]]["route"] == "/v1/sessions/{session_id}"
    assert body["id"] not in text


def test_an_unknown_route_is_logged_without_a_template(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        answer = client.get("/v1/secret-token-in-path")

    (line,) = [line for line in _server_lines(caplog) if line["logger"] == "releaselog.access"]
    assert line["status"] == 404
    assert line["route"] is None
    assert line["request_id"] == answer.headers["X-Request-ID"]
    assert "secret-token-in-path" not in json.dumps(line)
