"""Email: the outbox, the worker, a real SMTP server on loopback (aiosmtpd), outages, TLS."""

import logging
import smtplib
import socket
import sqlite3
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from api.config import Settings
from api.db import create_db_engine, write_lock, write_transaction
from api.main import create_app
from api.services import mail_worker
from api.services.mail_outbox import delete_emails_of, queue_email
from api.services.mail_transport import (
    Email,
    MailConfigError,
    SmtpServer,
    describe_failure,
    parse_smtp_url,
    send,
)
from api.services.mail_worker import MailWorker, claim_due, deliver_due, record, retry_delay
from api.state import app_state
from models.mail import MailOutbox
from models.user import User
from tests.conftest import make_settings
from tests.mail_support import Certificate, SmtpSink, self_signed_certificate

MAIL_FROM = "releaselog <no-reply@releaselog.test>"
TO = "ana.martinez@example.com"
SUBJECT = "Your releaselog password was changed"
LINK = "https://app.example/reset-password?token=tok-123"
TEXT = f"Hello Ana,\n\nyour password was changed. Not you? Reset it: {LINK}\n"
HTML = f'<p>Hello Ana,</p><p>your password was changed. Not you? <a href="{LINK}">Reset it</a></p>'


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def down_sink() -> Iterator[SmtpSink]:
    """A server that is down (nothing listens on its port) until the test starts it."""
    server = SmtpSink()
    yield server
    server.stop()


@pytest.fixture
def person_id(app: FastAPI) -> uuid.UUID:
    """An account for the emails to belong to (made directly: no password hashing)."""
    user = User(email=TO, password_hash="-", display_name="Ana")
    with Session(app_state(app).engine, expire_on_commit=False) as db:
        db.add(user)
        db.commit()
    return user.id


def settings_for(app: FastAPI, **overrides: object) -> Settings:
    return make_settings(
        app_state(app).settings.database_url, **{"mail_from": MAIL_FROM, **overrides}
    )


def queue(app: FastAPI, user_id: uuid.UUID | None, **overrides: str) -> None:
    values = {"to": TO, "subject": SUBJECT, "text": TEXT, "html": HTML, **overrides}
    with Session(app_state(app).engine) as db, write_transaction(db):
        queue_email(db, user_id=user_id, **values)
        db.commit()


def outbox(app: FastAPI) -> list[MailOutbox]:
    with Session(app_state(app).engine) as db:
        return list(db.exec(select(MailOutbox).order_by(MailOutbox.created_at)).all())  # type: ignore[arg-type]


def run_worker(app: FastAPI, settings: Settings, now: datetime | None = None) -> int:
    return deliver_due(app_state(app).engine, settings, now)


def attempts_counted(outcome: str) -> float:
    value = REGISTRY.get_sample_value("releaselog_email_send_attempts_total", {"outcome": outcome})
    return value or 0.0


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- the outbox ----------------------------------------------------------------------------


def test_an_email_queued_in_a_rolled_back_transaction_is_never_sent(
    app: FastAPI, person_id: uuid.UUID, sink: SmtpSink
) -> None:
    with Session(app_state(app).engine) as db, write_transaction(db):
        queue_email(db, user_id=person_id, to=TO, subject=SUBJECT, text=TEXT, html=HTML)
        db.rollback()  # the change failed: its email goes with it

    def failing_change() -> None:
        with Session(app_state(app).engine) as db, write_transaction(db):
            queue_email(db, user_id=person_id, to=TO, subject=SUBJECT, text=TEXT, html=HTML)
            raise RuntimeError("the change failed before its commit")

    with pytest.raises(RuntimeError):
        failing_change()
    assert outbox(app) == []
    assert run_worker(app, settings_for(app, smtp_url=sink.url)) == 0
    assert sink.received == []


def test_queue_email_does_not_commit(app: FastAPI, person_id: uuid.UUID) -> None:
    with Session(app_state(app).engine) as db, write_transaction(db):
        queue_email(db, user_id=person_id, to=TO, subject=SUBJECT, text=TEXT, html=HTML)
        queue_email(db, user_id=None, to="b@example.com", subject="S", text="t", html="<p>t</p>")
    # write_transaction rolls back what the block left uncommitted.
    assert outbox(app) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to", "ana@example.com\r\nBcc: everyone@example.com"),
        ("to", "not an address"),
        ("to", ""),
        ("to", "a@" + "b" * 320),
        ("subject", "Hello\nBcc: everyone@example.com"),
        ("subject", " "),
        ("subject", "s" * 256),
    ],
)
def test_queue_email_refuses_a_header_that_is_not_one_sane_line(
    app: FastAPI, field: str, value: str
) -> None:
    values = {"to": TO, "subject": SUBJECT, "text": TEXT, "html": HTML, field: value}
    with (
        Session(app_state(app).engine) as db,
        write_transaction(db),
        pytest.raises(ValueError, match=field.replace("to", "recipient")),
    ):
        queue_email(db, user_id=None, **values)


def test_delete_emails_of_deletes_queued_and_sent_emails_of_that_person_only(
    app: FastAPI, person_id: uuid.UUID, sink: SmtpSink
) -> None:
    other = User(email="ben@example.com", password_hash="-", display_name="Ben")
    with Session(app_state(app).engine, expire_on_commit=False) as db:
        db.add(other)
        db.commit()
    queue(app, person_id)
    assert run_worker(app, settings_for(app, smtp_url=sink.url)) == 1  # sent
    queue(app, person_id)  # pending
    queue(app, other.id, to="ben@example.com")
    queue(app, None, to="nobody@example.com")

    with Session(app_state(app).engine) as db, write_transaction(db):
        delete_emails_of(db, person_id)
        db.commit()
    assert sorted(row.recipient for row in outbox(app)) == ["ben@example.com", "nobody@example.com"]


def test_deleting_the_account_deletes_its_emails_too(app: FastAPI, person_id: uuid.UUID) -> None:
    """The foreign key cascades: an erasure that forgot delete_emails_of leaves nothing."""
    queue(app, person_id)
    with Session(app_state(app).engine) as db:
        db.execute(delete(User).where(User.id == person_id))  # type: ignore[arg-type]
        db.commit()
    assert outbox(app) == []


def test_an_email_erased_while_being_sent_stays_erased(
    app: FastAPI, person_id: uuid.UUID, sink: SmtpSink
) -> None:
    settings = settings_for(app, smtp_url=sink.url)
    queue(app, person_id)
    [claimed] = claim_due(app_state(app).engine, settings, datetime.now(UTC), 10)
    with Session(app_state(app).engine) as db, write_transaction(db):
        delete_emails_of(db, person_id)
        db.commit()
    record(app_state(app).engine, settings, claimed, None, datetime.now(UTC))
    assert outbox(app) == []


# --- sending to a real SMTP server ---------------------------------------------------------


def test_sends_text_and_html_to_a_real_smtp_server(
    app: FastAPI, person_id: uuid.UUID, sink: SmtpSink
) -> None:
    sent_before = attempts_counted("sent")
    subject = "Passwort geändert für Ana"  # non-ASCII: encoded, not mangled
    queue(app, person_id, subject=subject)
    assert run_worker(app, settings_for(app, smtp_url=sink.url)) == 1

    [got] = sink.received
    assert got.mail_from == "no-reply@releaselog.test"
    assert got.rcpt_tos == [TO]
    message = got.message
    assert message["From"] == MAIL_FROM
    assert message["To"] == TO
    assert message["Subject"] == subject
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert html is not None
    # (lines end in CRLF on the wire)
    assert plain.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content().replace("\r\n", "\n").strip() == HTML

    [row] = outbox(app)
    assert message["Message-ID"] == f"<{row.id}@releaselog.test>"
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.sent_at is not None
    # Sent: the bodies (personal data, a live token) are gone; the record stays.
    assert (row.text_body, row.html_body) == (None, None)
    assert (row.recipient, row.subject, row.user_id) == (TO, subject, person_id)
    assert attempts_counted("sent") == sent_before + 1
    assert run_worker(app, settings_for(app, smtp_url=sink.url)) == 0  # sent once


def test_logs_in_with_the_percent_decoded_user_and_password(app: FastAPI) -> None:
    sink = SmtpSink(smtp_kwargs={"login": True, "auth_require_tls": False}).start()
    try:
        url = f"smtp://mailer%40releaselog.test:p%40ss%3Aw%20rd@127.0.0.1:{sink.port}"
        queue(app, None)
        assert run_worker(app, settings_for(app, smtp_url=url)) == 1
        assert sink.logins == [(b"mailer@releaselog.test", b"p@ss:w rd")]
        assert len(sink.received) == 1
    finally:
        sink.stop()


def test_the_send_happens_outside_any_transaction(app: FastAPI, sink: SmtpSink) -> None:
    """While the server holds the worker at DATA, the row is not locked and, on SQLite, the
    write lock (every session write's) is free: a slow mail server never stalls the API."""
    engine = app_state(app).engine
    free: list[bool] = []

    def look(_got: object) -> None:
        if engine.dialect.name == "sqlite":
            lock = write_lock(engine)
            assert hasattr(lock, "acquire")
            took = lock.acquire(timeout=2)
            if took:
                lock.release()
            path = make_url(str(engine.url)).database
            raw = sqlite3.connect(str(path), timeout=1, isolation_level=None)
            try:
                raw.execute("BEGIN IMMEDIATE")  # fails if another connection holds the lock
                raw.execute("ROLLBACK")
            finally:
                raw.close()
            free.append(took)
        else:
            with engine.connect() as connection:
                ids = connection.execute(
                    select(MailOutbox.id).with_for_update(nowait=True)  # type: ignore[call-overload]
                ).all()
                connection.rollback()
            free.append(len(ids) == 1)

    sink.during_data = look
    queue(app, None)
    assert run_worker(app, settings_for(app, smtp_url=sink.url)) == 1
    assert free == [True]
    assert len(sink.received) == 1


# --- failures, retries, outages -------------------------------------------------------------


def test_server_down_for_a_while_retried_with_backoff_then_delivered_once(
    app: FastAPI, person_id: uuid.UUID, down_sink: SmtpSink
) -> None:
    settings = settings_for(app, smtp_url=down_sink.url)  # base 30 s, window a day
    for n in range(3):
        queue(app, person_id, subject=f"email {n}")
    start = datetime.now(UTC)

    assert run_worker(app, settings, start) == 3  # refused: the server is down
    for row in outbox(app):
        assert (row.status, row.attempts, row.last_error) == (
            "pending",
            1,
            "ConnectionRefusedError",
        )
        assert row.text_body == TEXT  # kept until sent
        # 30 s * 2^0 with ±20 % jitter
        assert start + timedelta(seconds=23) <= row.next_attempt_at <= start + timedelta(seconds=37)
    assert run_worker(app, settings, start) == 0  # not due yet

    later = start + timedelta(hours=1)
    assert run_worker(app, settings, later) == 3  # still down
    for row in outbox(app):
        assert row.attempts == 2
        # the delay doubles: 60 s ± 20 %
        assert later + timedelta(seconds=47) <= row.next_attempt_at <= later + timedelta(seconds=73)

    down_sink.start()  # back
    assert run_worker(app, settings, start + timedelta(hours=2)) == 3
    assert run_worker(app, settings, start + timedelta(hours=3)) == 0
    assert sorted(got.message["Subject"] for got in down_sink.received) == [
        "email 0",
        "email 1",
        "email 2",
    ]
    rows = outbox(app)
    assert sorted(down_sink.message_ids()) == sorted(f"<{row.id}@releaselog.test>" for row in rows)
    assert all((row.status, row.attempts, row.text_body) == ("sent", 3, None) for row in rows)


def test_a_running_worker_rides_out_an_outage(
    app: FastAPI, person_id: uuid.UUID, down_sink: SmtpSink
) -> None:
    """The app's own worker (started by its lifespan), in real time: emails queued before it
    starts and while the server is down all arrive once it is back, each exactly once."""
    settings = settings_for(
        app,
        smtp_url=down_sink.url,
        mail_worker_enabled=True,
        mail_worker_poll_seconds=0.05,
        mail_retry_base_seconds=0.1,
    )
    for n in range(3):
        queue(app, person_id, subject=f"before start {n}")
    worker_app = create_app(settings)
    try:
        with TestClient(worker_app):
            wait_for(lambda: all(row.attempts >= 2 for row in outbox(app)))
            for n in range(2):
                queue(app, person_id, subject=f"during the outage {n}")
            wait_for(lambda: all(row.attempts >= 2 for row in outbox(app)))
            assert down_sink.received == []
            down_sink.start()
            wait_for(lambda: len(down_sink.received) >= 5)
            time.sleep(0.5)  # a duplicate would arrive now
    finally:
        app_state(worker_app).engine.dispose()
    ids = down_sink.message_ids()
    assert len(ids) == len(set(ids)) == 5
    assert all(
        (row.status, row.text_body, row.html_body) == ("sent", None, None) for row in outbox(app)
    )


def test_a_temporary_refusal_is_retried(app: FastAPI, person_id: uuid.UUID, sink: SmtpSink) -> None:
    sink.data_replies = ["451 4.3.0 Try again later"]
    settings = settings_for(app, smtp_url=sink.url)
    queue(app, person_id)
    start = datetime.now(UTC)
    retries_before = attempts_counted("retry")
    assert run_worker(app, settings, start) == 1
    [row] = outbox(app)
    assert (row.status, row.last_error) == ("pending", "SMTPDataError 451")
    assert attempts_counted("retry") == retries_before + 1
    assert run_worker(app, settings, start + timedelta(minutes=5)) == 1
    [row] = outbox(app)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert len(sink.received) == 1


def test_a_refused_recipient_fails_at_once_and_nothing_personal_is_kept(
    app: FastAPI, person_id: uuid.UUID, sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    sink.refuse_recipients = True
    failed_before = attempts_counted("failed")
    queue(app, person_id)
    with caplog.at_level(logging.DEBUG):
        assert run_worker(app, settings_for(app, smtp_url=sink.url)) == 1
    [row] = outbox(app)
    # 550 is permanent: no day of retries. The reply quoted the address; the table does not.
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "SMTPRecipientsRefused 550")
    assert (row.text_body, row.html_body, row.sent_at) == (None, None, None)
    assert attempts_counted("failed") == failed_before + 1
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("releaselog"))
    assert "given up" in ours
    for secret in (TO, "ana.martinez", SUBJECT, "tok-123"):
        assert secret not in ours


def test_gives_up_after_the_window(app: FastAPI, person_id: uuid.UUID, down_sink: SmtpSink) -> None:
    settings = settings_for(app, smtp_url=down_sink.url, mail_retry_window_seconds=3600)
    queue(app, person_id)
    [queued] = outbox(app)
    start = datetime.now(UTC)
    run_worker(app, settings, start)
    # Deep into the window, the next attempt is due when the window closes, not after.
    run_worker(app, settings, start + timedelta(minutes=59, seconds=50))
    [row] = outbox(app)
    assert row.status == "pending"
    assert row.next_attempt_at <= queued.created_at + timedelta(hours=1)

    assert run_worker(app, settings, start + timedelta(hours=1, seconds=1)) == 1
    [row] = outbox(app)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "ConnectionRefusedError")
    assert (row.text_body, row.html_body) == (None, None)
    assert run_worker(app, settings, start + timedelta(days=3)) == 0
    down_sink.start()
    assert run_worker(app, settings, start + timedelta(days=3)) == 0
    assert down_sink.received == []


def test_a_server_that_never_answers_is_a_timed_out_attempt(
    app: FastAPI, person_id: uuid.UUID
) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = settings_for(app, smtp_url=f"smtp://127.0.0.1:{port}", mail_timeout_seconds=0.3)
        queue(app, person_id)
        started = time.monotonic()
        assert run_worker(app, settings) == 1
        assert time.monotonic() - started < 5
    [row] = outbox(app)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "SMTPServerDisconnected (TimeoutError)"


def test_a_crash_mid_send_is_retried_after_the_lease(
    app: FastAPI, person_id: uuid.UUID, sink: SmtpSink
) -> None:
    settings = settings_for(app, smtp_url=sink.url)
    queue(app, person_id)
    start = datetime.now(UTC)
    [claimed] = claim_due(app_state(app).engine, settings, start, 10)  # then the worker dies
    assert run_worker(app, settings, start) == 0  # leased: nobody else takes it meanwhile
    lease = timedelta(seconds=mail_worker.lease_seconds(settings))
    assert run_worker(app, settings, start + lease - timedelta(seconds=1)) == 0
    assert run_worker(app, settings, start + lease + timedelta(seconds=1)) == 1
    [row] = outbox(app)
    assert (row.status, row.attempts) == ("sent", 2)  # the crashed attempt counts
    assert sink.message_ids() == [f"<{claimed.id}@releaselog.test>"]


def test_a_worker_whose_lease_ran_out_cannot_overwrite_a_newer_result(
    app: FastAPI, person_id: uuid.UUID, sink: SmtpSink
) -> None:
    settings = settings_for(app, smtp_url=sink.url)
    engine = app_state(app).engine
    queue(app, person_id)
    start = datetime.now(UTC)
    [stale] = claim_due(engine, settings, start, 10)
    later = start + timedelta(seconds=mail_worker.lease_seconds(settings) + 1)
    [fresh] = claim_due(engine, settings, later, 10)
    assert record(engine, settings, fresh, None, later) == "sent"
    record(engine, settings, stale, ConnectionRefusedError(), later)  # too late: ignored
    [row] = outbox(app)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


def test_retry_delay_doubles_with_bounded_jitter() -> None:
    for attempts, nominal in [(1, 30), (2, 60), (3, 120), (10, 30 * 2**9)]:
        for _ in range(20):
            assert nominal * 0.8 <= retry_delay(30, attempts) <= nominal * 1.2


@pytest.mark.parametrize(
    ("error", "described", "permanent"),
    [
        (ConnectionRefusedError(), "ConnectionRefusedError", False),
        (TimeoutError(), "TimeoutError", False),
        (
            smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"<a@example.com>")}),
            "SMTPRecipientsRefused 550",
            True,
        ),
        (
            smtplib.SMTPRecipientsRefused({"a@example.com": (450, b"greylisted")}),
            "SMTPRecipientsRefused 450",
            False,
        ),
        (smtplib.SMTPDataError(554, b"spam"), "SMTPDataError 554", True),
        (smtplib.SMTPDataError(452, b"full"), "SMTPDataError 452", False),
        # the operator's to fix (a login or MAIL_FROM refused): retried meanwhile
        (smtplib.SMTPAuthenticationError(535, b"no"), "SMTPAuthenticationError 535", False),
        (
            smtplib.SMTPSenderRefused(553, b"no", "x@example.com"),
            "SMTPSenderRefused 553",
            False,
        ),
    ],
)
def test_failures_are_described_without_personal_data(
    error: Exception, described: str, permanent: bool
) -> None:
    assert describe_failure(error) == (described, permanent)


# --- several workers ---------------------------------------------------------------------------


def test_two_workers_never_send_an_email_twice(
    app: FastAPI, person_id: uuid.UUID, sink: SmtpSink
) -> None:
    """Two workers with engines of their own (as two processes have) share one database."""
    sink.delay_seconds = 0.02  # each send takes a while: both workers are busy at once
    settings = settings_for(
        app, smtp_url=sink.url, mail_worker_poll_seconds=0.01, mail_worker_concurrency=3
    )
    for n in range(30):
        queue(app, person_id, subject=f"email {n}")
    engines = [create_db_engine(settings) for _ in range(2)]
    workers = [MailWorker(engine, settings) for engine in engines]
    try:
        for worker in workers:
            worker.start()
        wait_for(lambda: len(sink.received) >= 30, timeout=30)
        time.sleep(0.3)  # a duplicate would arrive now
    finally:
        for worker in workers:
            worker.stop()
        for engine in engines:
            engine.dispose()
    ids = sink.message_ids()
    assert len(ids) == len(set(ids)) == 30
    assert all((row.status, row.attempts) == ("sent", 1) for row in outbox(app))


def test_concurrent_rounds_claim_each_email_once(
    app: FastAPI, person_id: uuid.UUID, sink: SmtpSink
) -> None:
    settings = settings_for(app, smtp_url=sink.url, mail_worker_concurrency=2)
    for _ in range(12):
        queue(app, person_id)
    rounds = [threading.Thread(target=run_worker, args=(app, settings)) for _ in range(4)]
    for worker in rounds:
        worker.start()
    for worker in rounds:
        worker.join()
    while run_worker(app, settings):
        pass
    ids = sink.message_ids()
    assert len(ids) == len(set(ids)) == 12


def test_a_row_locked_by_another_worker_is_skipped(app: FastAPI, person_id: uuid.UUID) -> None:
    if app_state(app).engine.dialect.name != "postgresql":
        pytest.skip("row locks (FOR UPDATE SKIP LOCKED) are PostgreSQL's; SQLite has one writer")
    settings = settings_for(app, smtp_url="smtp://127.0.0.1:9")
    queue(app, person_id)
    now = datetime.now(UTC)
    with app_state(app).engine.connect() as other_worker:
        transaction = other_worker.begin()
        locked = other_worker.execute(
            select(MailOutbox.id).with_for_update(skip_locked=True)  # type: ignore[call-overload]
        ).all()
        assert len(locked) == 1
        assert claim_due(app_state(app).engine, settings, now, 10) == []
        transaction.rollback()
    assert len(claim_due(app_state(app).engine, settings, now, 10)) == 1


def test_an_idle_round_does_not_wait_for_the_writers(app: FastAPI) -> None:
    """With nothing due, a poll only reads: on SQLite it must not queue behind session writes."""
    settings = settings_for(app, smtp_url="smtp://127.0.0.1:9")
    rounds: list[int] = []
    with Session(app_state(app).engine) as db, write_transaction(db):  # a writer holds the lock
        poller = threading.Thread(target=lambda: rounds.append(run_worker(app, settings)))
        poller.start()
        poller.join(timeout=5)
        assert not poller.is_alive()
    assert rounds == [0]


# --- SMTP_URL unset: the log ---------------------------------------------------------------


def test_without_smtp_url_the_email_goes_to_the_log(
    app: FastAPI, person_id: uuid.UUID, caplog: pytest.LogCaptureFixture
) -> None:
    logged_before = attempts_counted("logged")
    queue(app, person_id)
    with caplog.at_level(logging.INFO, logger="releaselog.mail"):
        assert run_worker(app, settings_for(app, smtp_url="")) == 1
    [line] = [r for r in caplog.records if "NOT SENT" in r.getMessage()]
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    for part in (TO, SUBJECT, TEXT.strip(), "SMTP_URL is unset"):
        assert part in message
    [row] = outbox(app)
    assert (row.status, row.text_body) == ("sent", None)
    assert attempts_counted("logged") == logged_before + 1


def test_start_up_warns_loudly_when_smtp_url_is_unset(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    def warnings_at_start(**overrides: object) -> str:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="releaselog.mail"):
            started = create_app(settings_for(app, **overrides))
        app_state(started).engine.dispose()
        return caplog.text

    unset = warnings_at_start(smtp_url="")
    assert "SMTP_URL is not set" in unset
    assert "NEVER run like this in production" in unset
    configured = warnings_at_start(
        smtp_url="smtps://u:p@mail.example.org", public_base_url="https://releaselog.example"
    )
    assert configured == ""
    assert "PUBLIC_BASE_URL" in warnings_at_start(smtp_url="smtps://mail.example.org")
    assert "unencrypted" in warnings_at_start(
        smtp_url="smtp://u:secret@mail.example.org", public_base_url="https://releaselog.example"
    )


def test_an_unusable_smtp_url_or_sender_refuses_to_start(app: FastAPI) -> None:
    with pytest.raises(MailConfigError) as refused:
        create_app(settings_for(app, smtp_url="smtp://u:hunter2@mail.example.org:port"))
    assert "hunter2" not in str(refused.value)
    with pytest.raises(MailConfigError):
        create_app(settings_for(app, smtp_url="smtp://mail.example.org", mail_from="releaselog"))


# --- settings and SMTP_URL -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("", None),
        ("smtp://mail.example.org", SmtpServer("mail.example.org", 25, "none")),
        (
            "smtp://u:p@mail.example.org:2525",
            SmtpServer("mail.example.org", 2525, "none", "u", "p"),
        ),
        (
            "smtp://u:p@mail.example.org?starttls=true",
            SmtpServer("mail.example.org", 587, "starttls", "u", "p"),
        ),
        (
            "smtp://u:p@mail.example.org:25?starttls=false",
            SmtpServer("mail.example.org", 25, "none", "u", "p"),
        ),
        (
            "smtps://u:p%40ss@mail.example.org",
            SmtpServer("mail.example.org", 465, "tls", "u", "p@ss"),
        ),
        (
            "smtp://me%40example.org:pa%3As%2Fs@[::1]:1025/?starttls=true",
            SmtpServer("::1", 1025, "starttls", "me@example.org", "pa:s/s"),
        ),
        (
            "smtps://apikey@mail.example.org:2465",
            SmtpServer("mail.example.org", 2465, "tls", "apikey"),
        ),
    ],
)
def test_smtp_url(url: str, server: SmtpServer | None) -> None:
    assert parse_smtp_url(url) == server


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.org",
        "mail.example.org:25",
        "smtp://",
        "smtp://:secret@mail.example.org",
        "smtps://mail.example.org?starttls=true",
        "smtp://mail.example.org?starttls=maybe",
        "smtp://mail.example.org?tls=true",
        "smtp://mail.example.org:99999",
        "smtp://mail.example.org/inbox",
    ],
)
def test_smtp_url_refused(url: str) -> None:
    with pytest.raises(MailConfigError) as refused:
        parse_smtp_url(url)
    assert "secret" not in str(refused.value)


def test_the_smtp_password_is_not_in_the_server_repr() -> None:
    server = parse_smtp_url("smtps://u:hunter2@mail.example.org")
    assert "hunter2" not in repr(server)


def test_public_base_url_is_normalised_and_checked(database_url: str) -> None:
    assert make_settings(database_url).public_base_url == "http://127.0.0.1:8000"
    settings = make_settings(database_url, public_base_url="https://releaselog.example/app/")
    assert settings.public_base_url == "https://releaselog.example/app"
    with pytest.raises(ValidationError):
        make_settings(database_url, public_base_url="releaselog.example")


# --- TLS, for real ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    made = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    return made


EMAIL = Email(
    id=str(uuid.uuid4()),
    recipient=TO,
    subject=SUBJECT,
    text_body=TEXT,
    html_body=HTML,
    created_at=datetime.now(UTC),
)


def test_starttls_before_login_and_sending(certificate: Certificate) -> None:
    sink = SmtpSink(
        smtp_kwargs={
            "tls_context": certificate.server_context(),
            "require_starttls": True,  # refuses MAIL and AUTH before STARTTLS
            "login": True,
        }
    ).start()
    try:
        server = parse_smtp_url(f"smtp://u:p@127.0.0.1:{sink.port}?starttls=true")
        assert server is not None
        send(server, EMAIL, MAIL_FROM, 5, ssl_context=certificate.client_context())
        assert len(sink.received) == 1
        assert sink.logins == [(b"u", b"p")]
        # The certificate is verified: one the client does not trust is refused.
        with pytest.raises(ssl.SSLCertVerificationError) as refused:
            send(server, EMAIL, MAIL_FROM, 5)
        assert describe_failure(refused.value) == ("SSLCertVerificationError", False)
        assert len(sink.received) == 1
    finally:
        sink.stop()


def test_smtps_speaks_tls_from_the_first_byte(certificate: Certificate) -> None:
    sink = SmtpSink(implicit_tls=certificate.server_context()).start()
    try:
        server = parse_smtp_url(f"smtps://127.0.0.1:{sink.port}")
        assert server is not None
        assert server.security == "tls"
        send(server, EMAIL, MAIL_FROM, 5, ssl_context=certificate.client_context())
        assert len(sink.received) == 1
        assert sink.received[0].message["Subject"] == SUBJECT
        with pytest.raises(ssl.SSLCertVerificationError):
            send(server, EMAIL, MAIL_FROM, 5)  # untrusted certificate
    finally:
        sink.stop()


def test_plain_smtp_to_a_tls_only_port_fails_without_hanging(certificate: Certificate) -> None:
    sink = SmtpSink(implicit_tls=certificate.server_context()).start()
    try:
        server = parse_smtp_url(f"smtp://127.0.0.1:{sink.port}")
        assert server is not None
        started = time.monotonic()
        with pytest.raises((OSError, smtplib.SMTPException)):
            send(server, EMAIL, MAIL_FROM, 1)
        assert time.monotonic() - started < 5
    finally:
        sink.stop()


def test_the_metric_is_published(client: TestClient) -> None:
    body = client.get("/metrics").text
    for outcome in ("sent", "retry", "failed", "logged"):
        assert f'releaselog_email_send_attempts_total{{outcome="{outcome}"}}' in body
