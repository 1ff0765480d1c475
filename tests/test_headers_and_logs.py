"""Security headers, CORS from settings, request ids, and logs that keep secrets out."""

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import Person, make_settings
from factories import session_body
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert

from api.logs import JsonFormatter
from api.main import create_app
from api.services import sessions
from api.state import app_state
from models.release_session import SESSION_TABLE
from models.user import User

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


# --- no personal data in logs, even when a write fails ------------------------------------

CANARY_NOTE = "canary-note-5d1e: the inner thigh burns after the ball"
# A second row of an existing id or email: a real error of the driver, its statement's
# parameters holding the note or the email (and on PostgreSQL its message quoting the key).
_INSERT_SESSION = insert(SESSION_TABLE)
_INSERT_USER = insert(User.__table__)  # type: ignore[attr-defined]


@pytest.fixture
def every_logger_verbose(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger at DEBUG, as LOG_LEVEL=DEBUG and more: also each library's own loggers.
    SQLAlchemy's at INFO, which logs every statement with its parameters (hidden:
    hide_parameters); its DEBUG would also log result rows, which hide_parameters does not
    cover and which the app never turns on (SQLAlchemy keeps its loggers at WARNING)."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        level = logging.INFO if name.startswith("sqlalchemy") else logging.DEBUG
        caplog.set_level(level, logger=name)
    return caplog


@pytest.mark.parametrize("failure", ["session id taken", "email taken"])
def test_an_internal_error_in_a_create_logs_no_note_email_or_sql_parameter(
    app: FastAPI,
    make_person: Callable[..., Person],
    every_logger_verbose: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    person = make_person("Canary")
    inserted: list[Any] = []
    real_insert = sessions._insert

    def recording_insert(connection: Any, rows: list[Any], ratings: list[Any]) -> None:
        inserted.extend(rows)
        real_insert(connection, rows, ratings)

    def failing_hooks(connection: Any, _owners: list[Any]) -> dict[Any, Any]:
        # Runs in the create's transaction, right after its INSERTs.
        if failure == "session id taken":
            connection.execute(_INSERT_SESSION, inserted)  # the note in the parameters
        else:
            twin = User(email=person.email, password_hash="x", display_name="Twin")
            connection.execute(_INSERT_USER, twin.model_dump())
        return {}

    monkeypatch.setattr(sessions, "_insert", recording_insert)
    monkeypatch.setattr(sessions, "subscribed_hooks", failing_hooks)
    body = session_body(notes=CANARY_NOTE)

    # raise_server_exceptions: an exception that reached the server (which would log it,
    # message and all) would be raised here.
    with TestClient(app, raise_server_exceptions=True) as server:
        answer = server.post("/v1/sessions", json=body, headers=person.headers)

    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {
        "type": "about:blank",
        "title": "Internal server error",
        "status": 500,
        "detail": "An unexpected error occurred. It has been logged.",
    }
    records = every_logger_verbose.records
    lines = _server_lines(every_logger_verbose)
    everything = "\n".join(
        [answer.text, every_logger_verbose.text, *(json.dumps(line) for line in lines)]
        + [repr(vars(record)) for record in records]
    )
    for private in (CANARY_NOTE, "inner thigh", person.email, person.email.split("@")[0]):
        assert private not in everything
    for sql in ("INSERT", "[SQL", "parameters"):
        assert sql not in answer.text
    # The error is logged, with the request's id: where it failed, not what it held.
    (error,) = [line for line in lines if line["logger"] == "releaselog.errors"]
    assert error["request_id"] == answer.headers["X-Request-ID"]
    assert error["message"] == "unhandled error on POST /v1/sessions"
    assert "IntegrityError (message withheld)" in str(error["exception"])
    assert "[SQL: INSERT INTO" in str(error["exception"])
    # SQLAlchemy's statement log ran (registration, login) and hid every parameter.
    statements = [record for record in records if record.name.startswith("sqlalchemy.engine")]
    assert any("hide_parameters=True" in record.getMessage() for record in statements)


def test_a_logged_exception_keeps_its_frames_and_types_not_its_messages() -> None:
    # Values a request brought (the source lines a traceback quotes are code, not values).
    email, note = "-".join(["ana", "lopez@example.com"]), " ".join(["sore", "adductor"])

    def fail() -> None:
        try:
            raise KeyError(email)
        except KeyError as error:
            raise ValueError(note) from error

    try:
        fail()
    except ValueError as error:
        caught = error
    exc_info = (type(caught), caught, caught.__traceback__)
    record = logging.LogRecord("releaselog.test", logging.ERROR, __file__, 1, "x", None, exc_info)

    text = json.loads(JsonFormatter().format(record))["exception"]

    assert email not in text
    assert note not in text
    assert "builtins.KeyError (message withheld)" in text
    assert "The above exception was the direct cause of the following exception" in text
    assert "builtins.ValueError (message withheld)" in text
    assert text.index("KeyError (") < text.index("ValueError (")  # oldest first, as Python
    assert "in fail" in text
