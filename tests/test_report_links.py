"""Report links: POST/GET /v1/report-links, DELETE /v1/report-links/{id}, and /r/{token}, the
report without any other credential."""

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select, update

from api.state import app_state
from models.report_link import ReportLink
from tests.conftest import Person
from tests.factories import api_key, session_days_ago

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _create(client: TestClient, person: Person, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/report-links", json=body, headers=person.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _path(created: dict[str, Any]) -> str:
    """The link's path (the url without PUBLIC_BASE_URL)."""
    return "/r/" + created["url"].rsplit("/r/", 1)[1]


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _expire(app: FastAPI, link_id: str) -> None:
    with app_state(app).engine.begin() as connection:
        connection.execute(
            update(ReportLink.__table__)  # type: ignore[arg-type]
            .where(ReportLink.__table__.c.id == uuid.UUID(link_id))  # type: ignore[attr-defined]
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def _assert_not_found(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_create_answers_201_with_the_url_shown_once(
    client: TestClient, app: FastAPI, alice: Person
) -> None:
    before = datetime.now(UTC)
    response = client.post("/v1/report-links", json={}, headers=alice.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "url", "period", "expires_at", "created_at"}
    assert response.headers["location"] == f"/v1/report-links/{body['id']}"
    base_url = app_state(app).settings.public_base_url
    assert body["url"].startswith(f"{base_url}/r/")
    token = body["url"].removeprefix(f"{base_url}/r/")
    assert "/" not in token
    assert "?" not in token
    # At least 128 random bits: urlsafe base64 of 32 bytes.
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 16
    created_at = _instant(body["created_at"])
    assert before <= created_at <= datetime.now(UTC)
    # `to` is the moment the link was made, `from` 90 days before, the account's time zone.
    period = body["period"]
    assert set(period) == {"from", "to", "tz"}
    assert _instant(period["to"]) == created_at
    assert _instant(period["from"]) == created_at - timedelta(days=90)
    assert period["tz"] == "UTC"
    assert _instant(body["expires_at"]) == created_at + timedelta(days=14)
    for field in ("created_at", "expires_at"):
        assert body[field].endswith("Z")


def test_create_takes_the_period_time_zone_and_lifetime(
    client: TestClient, make_person: Any
) -> None:
    berlin: Person = make_person("Berta", "Europe/Berlin")
    assert _create(client, berlin)["period"]["tz"] == "Europe/Berlin"
    body = _create(
        client,
        berlin,
        **{
            "from": "2026-10-01T00:00:00+02:00",
            "to": "2026-11-01T00:00:00+01:00",
            "tz": "America/New_York",
            "expires_in_days": 90,
        },
    )
    assert body["period"] == {
        "from": "2026-09-30T22:00:00Z",
        "to": "2026-10-31T23:00:00Z",
        "tz": "America/New_York",
    }
    assert _instant(body["expires_at"]) == _instant(body["created_at"]) + timedelta(days=90)


def test_the_token_is_stored_nowhere(client: TestClient, app: FastAPI, alice: Person) -> None:
    created = _create(client, alice)
    token = _path(created).removeprefix("/r/")
    metadata = MetaData()
    metadata.reflect(app_state(app).engine)
    with app_state(app).engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                text = json.dumps(dict(row._mapping), default=str)
                assert token not in text, table.name
                assert created["url"] not in text, table.name
        stored = connection.execute(select(ReportLink.__table__.c.token_hash)).scalars().all()  # type: ignore[attr-defined]
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]


def test_the_list_shows_the_callers_live_links_newest_first_without_urls(
    client: TestClient, app: FastAPI, alice: Person, bob: Person
) -> None:
    links = [_create(client, alice, expires_in_days=days) for days in (1, 2, 3)]
    expired = _create(client, alice)
    _expire(app, expired["id"])
    _create(client, bob)
    response = client.get("/v1/report-links", headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    assert [item["id"] for item in body["items"]] == [link["id"] for link in reversed(links)]
    for item, link in zip(body["items"], reversed(links), strict=True):
        assert set(item) == {"id", "period", "expires_at", "created_at"}
        assert item == {key: value for key, value in link.items() if key != "url"}
    # Pages of one, by cursor.
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/report-links", params=params, headers=alice.headers).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [link["id"] for link in reversed(links)]
    bad = client.get("/v1/report-links", params={"cursor": "!!"}, headers=alice.headers)
    assert bad.status_code in (400, 422)
    assert bad.headers["content-type"] == "application/problem+json"


def test_the_link_opens_the_report_without_credentials(client: TestClient, alice: Person) -> None:
    session_days_ago(client, alice, 3, notes="shared-note-4711")
    created = _create(client, alice)
    page = client.get(_path(created))
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["x-robots-tag"] == "noindex"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "Alice" in page.text
    assert "shared-note-4711" in page.text
    pdf = client.get(_path(created) + "/report.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["x-robots-tag"] == "noindex"
    assert pdf.headers["cache-control"] == "no-store"
    assert pdf.headers["referrer-policy"] == "no-referrer"
    assert pdf.content.startswith(b"%PDF")


def test_the_period_is_fixed_and_the_data_live(client: TestClient, alice: Person) -> None:
    created = _create(client, alice)
    # After the link was made: one inside its period, one started after its `to`.
    session_days_ago(client, alice, 5, notes="inside-the-period-1234")
    session_days_ago(client, alice, 0, notes="after-the-period-5678")
    page = client.get(_path(created)).text
    assert "inside-the-period-1234" in page
    assert "after-the-period-5678" not in page
    # The caller's own report of the same moment would show it.
    own = client.get("/v1/report.html", headers=alice.headers).text
    assert "after-the-period-5678" in own


def test_an_expired_link_answers_404(client: TestClient, app: FastAPI, alice: Person) -> None:
    created = _create(client, alice, expires_in_days=1)
    assert client.get(_path(created)).status_code == 200
    _expire(app, created["id"])
    _assert_not_found(client, _path(created))
    _assert_not_found(client, _path(created) + "/report.pdf")
    assert client.get("/v1/report-links", headers=alice.headers).json()["items"] == []


def test_a_revoked_link_answers_404_at_once(client: TestClient, alice: Person) -> None:
    created = _create(client, alice)
    assert client.get(_path(created)).status_code == 200
    revoked = client.delete(f"/v1/report-links/{created['id']}", headers=alice.headers)
    assert revoked.status_code == 204
    _assert_not_found(client, _path(created))
    _assert_not_found(client, _path(created) + "/report.pdf")
    again = client.delete(f"/v1/report-links/{created['id']}", headers=alice.headers)
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/report-links", headers=alice.headers).json()["items"] == []


def test_another_persons_link_is_404(client: TestClient, alice: Person, bob: Person) -> None:
    created = _create(client, alice)
    response = client.delete(f"/v1/report-links/{created['id']}", headers=bob.headers)
    assert response.status_code == 404
    assert client.get("/v1/report-links", headers=bob.headers).json()["items"] == []
    assert client.get(_path(created)).status_code == 200  # still alive
    unknown = client.delete(f"/v1/report-links/{uuid.uuid4()}", headers=alice.headers)
    assert unknown.status_code == 404


def test_api_keys_may_not_manage_links(client: TestClient, alice: Person) -> None:
    scopes = ("sessions:read", "sessions:write", "summaries:read", "clients:read")
    key_headers, _ = api_key(client, alice, *scopes)
    created = _create(client, alice)
    assert client.post("/v1/report-links", json={}, headers=key_headers).status_code == 403
    assert client.get("/v1/report-links", headers=key_headers).status_code == 403
    deleted = client.delete(f"/v1/report-links/{created['id']}", headers=key_headers)
    assert deleted.status_code == 403
    assert client.post("/v1/report-links", json={}).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in_days": 0},
        {"expires_in_days": 91},
        {"expires_in_days": "soon"},
        {"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        {"from": "2010-01-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        {"from": "2026-11-01T00:00:00"},
        {"to": "0001-01-01T00:00:00+01:00"},
        {"tz": "Mars/Olympus_Mons"},
        {"url": "https://example.com/r/mine"},
        {"user_id": str(uuid.uuid4())},
        {"period_from": "2026-11-01T00:00:00Z"},
    ],
)
def test_invalid_bodies_are_422(client: TestClient, alice: Person, body: dict[str, Any]) -> None:
    response = client.post("/v1/report-links", json=body, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert errors
    assert all(error["loc"][0] == "body" for error in errors), errors
    assert client.get("/v1/report-links", headers=alice.headers).json()["items"] == []


def test_an_unknown_link_is_a_page_for_browsers_and_problem_json_otherwise(
    client: TestClient,
) -> None:
    path = "/r/" + "A" * 43
    for accept in (BROWSER_ACCEPT, "text/html"):
        for suffix in ("", "/report.pdf"):
            page = client.get(path + suffix, headers={"Accept": accept})
            assert page.status_code == 404
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["content-security-policy"] == CSP
            assert page.headers["x-robots-tag"] == "noindex"
            assert page.headers["cache-control"] == "no-store"
            assert page.headers["referrer-policy"] == "no-referrer"
            assert "unknown, revoked or expired" in page.text
            assert "new one" in page.text
            assert "<script" not in page.text.lower()
    for headers in ({}, {"Accept": "application/json"}, {"Accept": "text/html;q=0, */*"}):
        problem = client.get(path, headers=headers)
        assert problem.status_code == 404
        assert problem.headers["content-type"] == "application/problem+json"
        assert problem.headers["x-robots-tag"] == "noindex"
        body = problem.json()
        assert body["status"] == 404
        assert "unknown, revoked or expired" in body["detail"]


@pytest.mark.parametrize(
    "token",
    ["x" * 101, "x" * 5000, "%00", "%FF%FE", "..", "a b", "<script>", "%C3%A9t%C3%A9", "a.b"],
)
def test_garbage_tokens_are_404_never_500(client: TestClient, token: str) -> None:
    for suffix in ("", "/report.pdf"):
        response = client.get(f"/r/{token}{suffix}")
        assert response.status_code == 404, (token, response.text)
        html = client.get(f"/r/{token}{suffix}", headers={"Accept": "text/html"})
        assert html.status_code == 404
        assert "<script>" not in html.text


def test_the_link_dies_with_the_account(client: TestClient, alice: Person) -> None:
    created = _create(client, alice)
    assert client.get(_path(created)).status_code == 200
    erased = client.request(
        "DELETE", "/v1/me", json={"password": alice.password}, headers=alice.headers
    )
    assert erased.status_code == 204
    _assert_not_found(client, _path(created))
    _assert_not_found(client, _path(created) + "/report.pdf")


def test_making_a_link_clears_the_persons_expired_ones(
    client: TestClient, app: FastAPI, alice: Person, bob: Person
) -> None:
    old = _create(client, alice)
    bobs = _create(client, bob)
    _expire(app, old["id"])
    _expire(app, bobs["id"])
    _create(client, alice)
    with app_state(app).engine.connect() as connection:
        ids = connection.execute(select(ReportLink.__table__.c.id)).scalars().all()  # type: ignore[attr-defined]
    assert uuid.UUID(old["id"]) not in ids
    assert uuid.UUID(bobs["id"]) in ids  # only the caller's own


def test_no_body_is_every_default(client, alice):
    created = client.post("/v1/report-links", headers=alice.headers)
    assert created.status_code == 201, created.text
    assert created.json()["period"]["tz"] == "UTC"
    opened = client.get(_path(created.json()))
    assert opened.status_code == 200
    assert opened.headers["content-type"] == "text/html; charset=utf-8"
