"""Every route of the app, enumerated from the app itself: a deleted account's access token and
API key get 401 on each one that is not public, so a new route cannot forget the check."""

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import delete
from sqlmodel import Session

from api.state import app_state
from models.user import User
from tests.conftest import Person
from tests.factories import api_key, session_body

# Routes anyone may call. A route missing here must refuse a deleted account's credentials.
PUBLIC = {
    ("POST", "/v1/auth/register"),
    ("POST", "/v1/auth/token"),
    ("POST", "/v1/auth/password-reset"),
    ("POST", "/v1/auth/password-reset/confirm"),
    ("GET", "/reset-password"),
    ("POST", "/reset-password"),
    ("GET", "/r/{token}"),
    ("GET", "/r/{token}/report.pdf"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/catalog"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
}
# Bodies valid enough to reach the write itself: a session write learns that the account is
# gone when its transaction locks the account row, after the body is validated.
BODIES = {
    ("POST", "/v1/sessions"): session_body(),
    ("POST", "/v1/sessions/batch"): {"sessions": [session_body()]},
    ("PATCH", "/v1/sessions/{session_id}"): {"notes": "still there?"},
}


def _routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            for method in sorted(route.methods):
                yield method, route.path_format


def _path(template: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _match: str(uuid.uuid4()), template)


@pytest.fixture
def deleted_credentials(app: FastAPI, client: TestClient, alice: Person) -> list[dict[str, str]]:
    """Alice's access token and an API key with every scope, after her account is deleted."""
    scopes = ("sessions:read", "sessions:write", "summaries:read", "clients:read")
    key_headers, _key_id = api_key(client, alice, *scopes)
    assert client.get("/v1/sessions", headers=key_headers).status_code == 200
    with Session(app_state(app).engine) as db:
        db.execute(delete(User).where(User.id == uuid.UUID(alice.id)))  # type: ignore[arg-type]
        db.commit()
    return [alice.headers, key_headers]


def test_every_route_is_public_or_refuses_a_deleted_accounts_credentials(
    app: FastAPI, client: TestClient, deleted_credentials: list[dict[str, str]]
) -> None:
    routes = list(_routes(app))
    assert len(routes) > 30  # the enumeration sees the whole app
    assert PUBLIC <= set(routes)
    checked = []
    for method, template in routes:
        if (method, template) in PUBLIC:
            continue
        for headers in deleted_credentials:
            body = BODIES.get((method, template), {} if method in ("POST", "PATCH") else None)
            response = client.request(method, _path(template), json=body, headers=headers)
            assert response.status_code == 401, (method, template, headers, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        checked.append((method, template))
    assert ("POST", "/v1/sessions") in checked
    assert ("DELETE", "/v1/sessions/{session_id}") in checked
    assert ("POST", "/v1/report-links") in checked
    assert ("DELETE", "/v1/report-links/{report_link_id}") in checked
