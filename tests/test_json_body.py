"""How the creates answer every kind of JSON body: FastAPI's own handling, pinned, so that no
change to how the body is read (a faster parser, another framework version) can move an answer.
"""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Person
from tests.factories import session_body

JSON = "application/json"
NOT_A_DICT = "body: Input should be a valid dictionary or object to extract fields from"
NOT_FINITE = "water_before_ml: Value error, must be a finite number"


def _body(**overrides: Any) -> bytes:
    return json.dumps(session_body(**overrides)).encode()


def _raw(field: str, literal: bytes) -> bytes:
    """A body whose `field` holds `literal` as written (which json.dumps cannot write)."""
    return _body(**{field: "@"}).replace(
        f'"{field}": "@"'.encode(), f'"{field}": '.encode() + literal
    )


CASES = {
    "valid": (_body(), JSON, 201, None),
    "valid, charset": (_body(), "application/json; charset=utf-8", 201, None),
    "valid, upper case type": (_body(), "Application/JSON", 201, None),
    "valid, server-chosen id": (json.dumps(session_body(id=None)).encode(), JSON, 201, None),
    "not JSON": (b'{"started_at": ', JSON, 400, "The request body is not valid JSON."),
    "empty": (b"", JSON, 422, "body: Field required"),
    "NaN literal": (_raw("water_before_ml", b"NaN"), JSON, 422, NOT_FINITE),
    "huge number": (_raw("water_before_ml", b"1e400"), JSON, 422, NOT_FINITE),
    "lone surrogate": (
        _raw("notes", b'"\\ud800"'),
        JSON,
        422,
        "notes: Input should be a valid string, unable to parse raw data as a unicode string",
    ),
    "NUL in text": (
        _raw("notes", b'"a\\u0000b"'),
        JSON,
        400,
        "Text must not contain NUL (U+0000) characters.",
    ),
    "array": (b"[]", JSON, 422, NOT_A_DICT),
    "string": (b'"session"', JSON, 422, NOT_A_DICT),
    "wrong types": (
        _body(started_at=5, water_after_ml="lots"),
        JSON,
        422,
        "started_at: Value error, must be an RFC 3339 timestamp string with an offset (and 1 more)",
    ),
    "unknown field": (_body(colour="blue"), JSON, 422, "colour: Extra inputs are not permitted"),
    "rating out of range": (
        _body(ratings=[{"region": "adductors", "metric": "pain", "before": 11}]),
        JSON,
        422,
        "ratings.0.before: Value error, must be between 0 and 10 for pain",
    ),
    "boolean as number": (
        _body(water_before_ml=True),
        JSON,
        422,
        "water_before_ml: Input should be a valid number",
    ),
    "duplicate keys": (b'{"started_at": 1, ' + _body()[1:], JSON, 201, None),
    "JSON as text/plain": (_body(), "text/plain", 422, NOT_A_DICT),
    "JSON as vendor +json": (_body(), "application/vnd.releaselog+json", 201, None),
    "no content type": (_body(), "", 422, NOT_A_DICT),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_create_answers_every_kind_of_body(client: TestClient, alice: Person, case: str) -> None:
    content, content_type, status, detail = CASES[case]
    headers = {**alice.headers, "Content-Type": content_type}
    response = client.post("/v1/sessions", content=content, headers=headers)
    assert response.status_code == status, response.text
    if detail is not None:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == detail
    else:
        stored = client.get(f"/v1/sessions/{response.json()['id']}", headers=alice.headers)
        assert stored.json() == response.json()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"X-API-Key": "rl_nothing"}],
    ids=["no credentials", "bad token", "bad key"],
)
@pytest.mark.parametrize(
    ("content", "status"),
    # The JSON is decoded before the credentials are checked, and they before the schema.
    [(_body(), 401), (_body(started_at="soon"), 401), (b"{", 400)],
    ids=["valid body", "invalid body", "broken JSON"],
)
def test_credentials_are_checked_between_decoding_and_validation(
    client: TestClient, headers: dict[str, str], content: bytes, status: int
) -> None:
    response = client.post(
        "/v1/sessions", content=content, headers={**headers, "Content-Type": JSON}
    )
    assert response.status_code == status


@pytest.mark.parametrize(
    ("content", "status", "items"),
    [
        (
            json.dumps({"sessions": [session_body(), {"started_at": "nope"}]}).encode(),
            200,
            ["created", "invalid"],
        ),
        (json.dumps({"sessions": []}).encode(), 422, None),
        (json.dumps({"sessions": [session_body()] * 501}).encode(), 422, None),
        (b'{"sessions": 5}', 422, None),
        (b"{", 400, None),
    ],
    ids=["mixed", "empty list", "too many", "not a list", "not JSON"],
)
def test_a_batch_answers_every_kind_of_body(
    client: TestClient, alice: Person, content: bytes, status: int, items: list[str] | None
) -> None:
    headers = {**alice.headers, "Content-Type": JSON}
    response = client.post("/v1/sessions/batch", content=content, headers=headers)
    assert response.status_code == status, response.text
    if items is not None:
        assert [item["status"] for item in response.json()["results"]] == items
