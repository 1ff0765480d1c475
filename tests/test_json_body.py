"""The JSON fast path of the creates (api/routing.py) answers exactly as FastAPI's own path.

Every case is sent twice: once as is, once with a dependency override in place, which sends
the request down FastAPI's path. Both answers must be the same, down to the problem details.
"""

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from models.release_session import BatchRequest, SessionCreate
from tests.conftest import Person
from tests.factories import session_body

JSON = "application/json"
ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _fastapi_only() -> None:  # never called: its override only has to exist
    raise AssertionError


@contextmanager
def _fastapi_path(app: FastAPI) -> Iterator[None]:
    app.dependency_overrides[_fastapi_only] = _fastapi_only
    try:
        yield
    finally:
        app.dependency_overrides.pop(_fastapi_only)


def _body(**overrides: Any) -> bytes:
    return json.dumps(session_body(**overrides)).encode()


def _raw(field: str, literal: bytes) -> bytes:
    """A body whose `field` holds `literal` as written (which json.dumps cannot write)."""
    return _body(**{field: "@"}).replace(
        f'"{field}": "@"'.encode(), f'"{field}": '.encode() + literal
    )


def _fresh_ids(content: bytes) -> bytes:
    """The same bytes with every client-chosen id replaced, so that a second send creates
    rather than replays."""
    for old in set(ID.findall(content)):
        content = content.replace(old, str(uuid.uuid4()).encode())
    return content


def _answer(response: Any) -> tuple[int, Any]:
    """Status and body, without what differs between two requests by design."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        volatile = {"id", "created_at", "updated_at", "instance", "request_id"}
        body = {key: value for key, value in body.items() if key not in volatile}
    return response.status_code, body


def _both_ways(
    client: TestClient, app: FastAPI, path: str, content: bytes, headers: dict[str, str]
) -> tuple[Any, Any]:
    fast = client.post(path, content=content, headers=headers)
    with _fastapi_path(app):
        slow = client.post(path, content=_fresh_ids(content), headers=headers)
    return fast, slow


CASES = {
    "valid": (_body(), JSON),
    "valid, charset": (_body(), "application/json; charset=utf-8"),
    "valid, upper case type": (_body(), "Application/JSON"),
    "valid, server-chosen id": (json.dumps(session_body(id=None)).encode(), JSON),
    "not JSON": (b'{"started_at": ', JSON),
    "empty": (b"", JSON),
    "NaN literal": (_raw("water_before_ml", b"NaN"), JSON),
    "huge number": (_raw("water_before_ml", b"1e400"), JSON),
    "lone surrogate": (_raw("notes", b'"\\ud800"'), JSON),
    "NUL in text": (_raw("notes", b'"a\\u0000b"'), JSON),
    "array": (b"[]", JSON),
    "string": (b'"session"', JSON),
    "wrong types": (_body(started_at=5, water_after_ml="lots"), JSON),
    "unknown field": (_body(colour="blue"), JSON),
    "rating out of range": (
        _body(ratings=[{"region": "adductors", "metric": "pain", "before": 11}]),
        JSON,
    ),
    "boolean as number": (_body(water_before_ml=True), JSON),
    "duplicate keys": (b'{"started_at": 1, ' + _body()[1:], JSON),
    "JSON as text/plain": (_body(), "text/plain"),
    "JSON as vendor +json": (_body(), "application/vnd.releaselog+json"),
    "no content type": (_body(), ""),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_create_answers_as_fastapi_would(
    client: TestClient, app: FastAPI, alice: Person, case: str
) -> None:
    content, content_type = CASES[case]
    headers = {**alice.headers, "Content-Type": content_type}
    fast, slow = (_answer(r) for r in _both_ways(client, app, "/v1/sessions", content, headers))
    assert fast == slow
    assert fast[0] in (201, 400, 422)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"X-API-Key": "rl_nothing"}],
    ids=["no credentials", "bad token", "bad key"],
)
@pytest.mark.parametrize(
    ("content", "status"),
    # FastAPI decodes the JSON before it checks credentials, and checks them before the schema.
    [(_body(), 401), (_body(started_at="soon"), 401), (b"{", 400)],
    ids=["valid body", "invalid body", "broken JSON"],
)
def test_credentials_are_checked_where_fastapi_checks_them(
    client: TestClient, app: FastAPI, headers: dict[str, str], content: bytes, status: int
) -> None:
    answers = _both_ways(client, app, "/v1/sessions", content, {**headers, "Content-Type": JSON})
    fast, slow = (_answer(response) for response in answers)
    assert fast == slow
    assert fast[0] == status


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"sessions": [session_body(), {"started_at": "nope"}]}).encode(),
        json.dumps({"sessions": []}).encode(),
        json.dumps({"sessions": [session_body()] * 501}).encode(),
        b'{"sessions": 5}',
        b"{",
    ],
    ids=["mixed", "empty list", "too many", "not a list", "not JSON"],
)
def test_a_batch_answers_as_fastapi_would(
    client: TestClient, app: FastAPI, alice: Person, content: bytes
) -> None:
    headers = {**alice.headers, "Content-Type": JSON}
    fast, slow = _both_ways(client, app, "/v1/sessions/batch", content, headers)

    def statuses(response: Any) -> Any:
        status, body = _answer(response)
        if status == 200:
            return status, [(item["status"], item.get("errors")) for item in body["results"]]
        return status, body

    assert statuses(fast) == statuses(slow)


def test_the_fast_path_validates_from_the_bytes_and_stores_what_fastapi_stores(
    client: TestClient, app: FastAPI, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[type] = []
    for model in (SessionCreate, BatchRequest):
        real = model.model_validate_json

        def spy(data: Any, *args: Any, _real: Any = real, _model: type = model, **kw: Any) -> Any:
            seen.append(_model)
            return _real(data, *args, **kw)

        monkeypatch.setattr(model, "model_validate_json", spy)
    headers = {**alice.headers, "Content-Type": JSON}
    fast_id, slow_id = str(uuid.uuid4()), str(uuid.uuid4())

    created = client.post("/v1/sessions", content=_body(id=fast_id), headers=headers)
    batch = json.dumps({"sessions": [session_body()]}).encode()
    batched = client.post("/v1/sessions/batch", content=batch, headers=headers)
    assert (created.status_code, batched.status_code) == (201, 200)
    assert seen == [SessionCreate, BatchRequest]

    with _fastapi_path(app):
        slow = client.post("/v1/sessions", content=_body(id=slow_id), headers=headers)
    assert slow.status_code == 201
    assert seen == [SessionCreate, BatchRequest]  # FastAPI's path: no fast validation

    def stored(session_id: str) -> dict[str, Any]:
        document = client.get(f"/v1/sessions/{session_id}", headers=alice.headers).json()
        return {k: v for k, v in document.items() if k not in ("id", "created_at", "updated_at")}

    fast, slow = stored(fast_id), stored(slow_id)
    assert fast.pop("version") == slow.pop("version") == 1
    assert fast == slow
