"""Password reset by email: the same answer whatever the email, a single-use 30-minute token
stored only as a hash, a newer request voiding older ones, the reset page for people without
the app, and the notice email after any change."""

import re
from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from api.services.mail_worker import deliver_due
from api.state import app_state
from models.base import utc_now
from models.mail import MailOutbox
from models.password_reset import PasswordResetToken
from tests.conftest import Person, make_settings
from tests.mail_support import SmtpSink

NEW_PASSWORD = "a fresh start for my legs"
LINK = re.compile(r"/reset-password\?token=([A-Za-z0-9_\-]+)")


def _emails(app: FastAPI, to: str) -> list[MailOutbox]:
    with app_state(app).engine.connect() as connection:
        rows = connection.execute(
            select(MailOutbox).where(MailOutbox.recipient == to)  # type: ignore[arg-type]
        ).all()
    return [MailOutbox.model_validate(row._mapping) for row in rows]


def _reset_token(app: FastAPI, person: Person) -> str:
    """The token of the newest reset email to the person, read from its link."""
    resets = [m for m in _emails(app, person.email) if "Reset" in m.subject]
    assert resets, "no reset email"
    newest = max(resets, key=lambda mail: mail.created_at)
    found = LINK.search(newest.text_body or "")
    assert found is not None
    assert found.group(1) in (newest.html_body or "")
    return found.group(1)


def _request(client: TestClient, email: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/auth/password-reset", json={"email": email})


def _confirm(client: TestClient, token: str, password: str = NEW_PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": password}
    )


def _login(client: TestClient, person: Person, password: str) -> int:
    form = {"username": person.email, "password": password}
    return client.post("/v1/auth/token", data=form).status_code


def test_the_answer_is_the_same_whether_or_not_the_account_exists(
    client: TestClient, app: FastAPI, alice: Person
) -> None:
    known = _request(client, alice.email.upper())  # emails are case-insensitive
    unknown = _request(client, "nobody-here@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert known.content == unknown.content
    assert len(_emails(app, alice.email)) == 1
    assert _emails(app, "nobody-here@example.com") == []
    token = _reset_token(app, alice)
    assert len(token) >= 22  # at least 128 random bits, base64url
    with app_state(app).engine.connect() as connection:
        stored = connection.execute(select(PasswordResetToken.token_hash)).scalars().all()
    assert len(stored) == 1
    assert token not in stored[0]  # only its hash is kept


def test_a_reset_sets_the_password_once_and_refuses_earlier_tokens(
    client: TestClient, app: FastAPI, alice: Person
) -> None:
    assert _request(client, alice.email).status_code == 202
    token = _reset_token(app, alice)
    assert _confirm(client, token).status_code == 204
    assert client.get("/v1/me", headers=alice.headers).status_code == 401
    assert _login(client, alice, alice.password) == 401
    assert _login(client, alice, NEW_PASSWORD) == 200
    used = _confirm(client, token, "yet another password")
    assert used.status_code == 400
    assert used.headers["content-type"] == "application/problem+json"
    assert _login(client, alice, NEW_PASSWORD) == 200
    notices = [m for m in _emails(app, alice.email) if "changed" in m.subject]
    assert len(notices) == 1


def test_a_newer_request_voids_the_older_token_and_tokens_expire(
    client: TestClient, app: FastAPI, alice: Person
) -> None:
    _request(client, alice.email)
    older = _reset_token(app, alice)
    _request(client, alice.email)
    newer = _reset_token(app, alice)
    assert older != newer
    assert _confirm(client, older).status_code == 400
    with app_state(app).engine.begin() as connection:
        connection.execute(
            update(PasswordResetToken).values(expires_at=utc_now() - timedelta(seconds=1))
        )
    assert _confirm(client, newer).status_code == 400
    assert _confirm(client, "not-a-token-at-all").status_code == 400
    assert _login(client, alice, alice.password) == 200


def test_reset_requests_are_limited_like_login(client: TestClient, alice: Person) -> None:
    answers = [_request(client, alice.email).status_code for _ in range(10)]
    assert answers == [202] * 10
    limited = _request(client, alice.email)
    assert limited.status_code == 429
    assert "retry-after" in limited.headers
    assert _request(client, "x" * 321 + "@example.com").status_code == 422


def test_the_reset_page_sets_a_new_password_without_javascript(
    client: TestClient, app: FastAPI, alice: Person
) -> None:
    _request(client, alice.email)
    token = _reset_token(app, alice)
    page = client.get("/reset-password", params={"token": token})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text.lower()
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert f'value="{token}"' in page.text
    assert 'name="new_password"' in page.text

    form = {"token": token, "new_password": NEW_PASSWORD, "confirm_password": "different one"}
    mismatch = client.post("/reset-password", data=form)
    assert mismatch.status_code == 400
    assert "differ" in mismatch.text
    assert _login(client, alice, alice.password) == 200

    form["confirm_password"] = NEW_PASSWORD
    done = client.post("/reset-password", data=form)
    assert done.status_code == 200
    assert "was changed" in done.text
    assert _login(client, alice, NEW_PASSWORD) == 200

    again = client.get("/reset-password", params={"token": token})
    assert again.status_code == 400
    assert "unknown, used or expired" in again.text


def test_the_page_escapes_what_it_echoes(client: TestClient) -> None:
    page = client.get("/reset-password", params={"token": '"><script>alert(1)</script>'})
    assert page.status_code == 400
    assert "<script>alert(1)" not in page.text
    form = {"token": '"><b>x</b>', "new_password": "0123456789", "confirm_password": "other"}
    answer = client.post("/reset-password", data=form)
    assert "<b>x</b>" not in answer.text
    assert "&#34;&gt;&lt;b&gt;x&lt;/b&gt;" in answer.text or "&quot;&gt;&lt;b&gt;" in answer.text


def test_the_reset_leaves_no_token_behind(client: TestClient, app: FastAPI, alice: Person) -> None:
    _request(client, alice.email)
    assert _confirm(client, _reset_token(app, alice)).status_code == 204
    with app_state(app).engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM password_reset_token")).scalar() == 0


def test_the_reset_email_reaches_a_real_smtp_server_and_its_link_works(
    client: TestClient, app: FastAPI, alice: Person
) -> None:
    sink = SmtpSink().start()
    try:
        settings = make_settings(
            app_state(app).settings.database_url,
            smtp_url=sink.url,
            mail_from="releaselog <no-reply@releaselog.test>",
        )
        assert _request(client, alice.email).status_code == 202
        assert deliver_due(app_state(app).engine, settings) == 1
    finally:
        sink.stop()
    [received] = sink.received
    message = received.message
    assert received.rcpt_tos == [alice.email]
    assert message["Subject"] == "Reset your releaselog password"
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    base_url = app_state(app).settings.public_base_url
    found = LINK.search(text_part.get_content())
    assert f"{base_url}/reset-password?token=" in text_part.get_content()
    assert found is not None
    assert found.group(1) in html_part.get_content()
    assert _confirm(client, found.group(1)).status_code == 204
    assert _login(client, alice, NEW_PASSWORD) == 200
    # The sent email keeps no body: the token no longer sits in the database.
    assert all(
        mail.text_body is None for mail in _emails(app, alice.email) if "Reset" in mail.subject
    )
