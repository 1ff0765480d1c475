"""The mail worker: claims due emails from the outbox (`mail_outbox`) and sends them.

Built like the webhook worker (api/services/webhook_worker.py); all state lives in the table,
so a restarted process, or any other one, picks up where the last left off. One round
(`deliver_due`):

1. claim: in one short transaction, select due rows (`status = 'pending'`,
   `next_attempt_at <= now`) `FOR UPDATE SKIP LOCKED` (PostgreSQL; on SQLite the write
   transaction serialises the claimers), count the attempt and lease the rows by pushing
   `next_attempt_at` past the longest an attempt can take. Commit. Another worker skips them
   while locked and, once committed, no longer sees them as due.
2. send, outside any transaction (on SQLite: without the write lock), a few at a time in
   threads: smtplib with a timeout on every step.
3. record each result in its own transaction, guarded by the attempt count it claimed, so a
   worker whose lease ran out cannot overwrite a newer result. Sent or given up, the bodies
   are deleted.

A crash between 1 and 3 leaves the row pending with its lease; it is retried when the lease
expires. An email is therefore sent at least once, and twice only if a worker dies (or
stalls past its lease) between the server accepting it and step 3.
"""

import logging
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, bindparam, select, update
from sqlmodel import Session

from api.config import Settings
from api.db import write_transaction
from api.metrics import EMAIL_SEND_ATTEMPTS
from api.services.mail_transport import (
    Email,
    SmtpServer,
    describe_failure,
    log_instead_of_sending,
    parse_smtp_url,
    send,
)
from api.services.polling import PollingWorker
from models.base import utc_now
from models.mail import MailOutbox

logger = logging.getLogger("releaselog.mail")

JITTER = 0.2  # each delay is scaled by a random factor in [1 - JITTER, 1 + JITTER]


@dataclass(frozen=True)
class Claimed:
    email: Email
    attempts: int  # counting the one just claimed

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(self.email.id)


def retry_delay(base_seconds: float, attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after `attempts` failed ones: base * 2^(attempts-1),
    with jitter (the webhooks' schedule)."""
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return base_seconds * 2 ** (attempts - 1) * factor


def lease_seconds(settings: Settings) -> float:
    # Connect, TLS, EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA, the message, QUIT: each
    # step may take up to the timeout.
    return 12 * settings.mail_timeout_seconds + 60


_DUE = (MailOutbox.status == "pending", MailOutbox.next_attempt_at <= bindparam("now"))  # type: ignore[operator]
_ANY_DUE = select(MailOutbox.id).where(*_DUE).limit(1)  # type: ignore[call-overload]


def any_due(engine: Engine, now: datetime) -> bool:
    """Is an email due? A read (ix_mail_outbox_due), so that an idle worker's poll never takes
    the write lock: on SQLite, that lock is every session write's."""
    with engine.connect() as connection:
        return connection.execute(_ANY_DUE, {"now": now}).first() is not None


def claim_due(engine: Engine, settings: Settings, now: datetime, limit: int) -> list[Claimed]:
    """Lease up to `limit` due emails and count an attempt for each."""
    if not any_due(engine, now):
        return []
    lease_until = now + timedelta(seconds=lease_seconds(settings))
    with Session(engine) as db, write_transaction(db) as connection:
        rows = connection.execute(
            select(  # type: ignore[call-overload]
                MailOutbox.id,
                MailOutbox.recipient,
                MailOutbox.subject,
                MailOutbox.text_body,
                MailOutbox.html_body,
                MailOutbox.attempts,
                MailOutbox.created_at,
            )
            .where(*_DUE)
            .order_by(MailOutbox.next_attempt_at)  # type: ignore[arg-type]
            .limit(limit)
            .with_for_update(skip_locked=True),
            {"now": now},
        ).all()
        if not rows:
            return []
        connection.execute(
            update(MailOutbox)
            .where(MailOutbox.id.in_([row.id for row in rows]))  # type: ignore[attr-defined]
            .values(
                attempts=MailOutbox.attempts + 1,
                next_attempt_at=lease_until,
                updated_at=now,
            )
        )
        db.commit()
    return [
        Claimed(
            Email(
                id=str(row.id),
                recipient=row.recipient,
                subject=row.subject,
                text_body=row.text_body or "",
                html_body=row.html_body or "",
                created_at=row.created_at,
            ),
            attempts=row.attempts + 1,
        )
        for row in rows
    ]


def attempt(server: SmtpServer | None, claimed: Claimed, settings: Settings) -> Exception | None:
    """Send one email (or, without SMTP_URL, log it); the error, or None once accepted."""
    if server is None:
        log_instead_of_sending(claimed.email, settings.mail_from)
        return None
    try:
        send(server, claimed.email, settings.mail_from, settings.mail_timeout_seconds)
    except Exception as error:  # whatever it was, the email is retried, not lost
        return error
    return None


def record(
    engine: Engine,
    settings: Settings,
    claimed: Claimed,
    error: Exception | None,
    now: datetime,
    outcome_if_sent: str = "sent",
) -> str:
    """Store the outcome of one attempt; returns sent (or logged), retry or failed."""
    values: dict[str, object] = {"updated_at": now}
    description = None
    if error is None:
        outcome = outcome_if_sent
        values.update(status="sent", sent_at=now, last_error=None)
    else:
        description, permanent = describe_failure(error)
        values["last_error"] = description
        give_up_at = claimed.email.created_at + timedelta(
            seconds=settings.mail_retry_window_seconds
        )
        if permanent or now >= give_up_at:
            outcome = "failed"
            values["status"] = "failed"
        else:
            outcome = "retry"
            delay = retry_delay(settings.mail_retry_base_seconds, claimed.attempts)
            # The last attempt happens when the window closes, not somewhere before it.
            values["next_attempt_at"] = min(now + timedelta(seconds=delay), give_up_at)
    if outcome != "retry":
        # Personal data (and a reset email's live token) no longer needed.
        values.update(text_body=None, html_body=None)
    with Session(engine) as db, write_transaction(db) as connection:
        result = connection.execute(
            update(MailOutbox)
            .where(
                MailOutbox.id == claimed.id,  # type: ignore[arg-type]
                MailOutbox.status == "pending",  # type: ignore[arg-type]
                MailOutbox.attempts == claimed.attempts,  # type: ignore[arg-type]
            )
            .values(**values)
        )
        db.commit()
    if not result.rowcount:
        # Another worker took over after this one's lease ran out, or the account was erased.
        return outcome
    EMAIL_SEND_ATTEMPTS.labels(outcome=outcome).inc()
    if outcome == "retry":
        logger.info("email %s not sent (%s); will retry", claimed.id, description)
    elif outcome == "failed":
        logger.warning(
            "email %s given up after %d attempts (%s)", claimed.id, claimed.attempts, description
        )
    else:
        logger.info("email %s sent", claimed.id)
    return outcome


def deliver_due(
    engine: Engine, settings: Settings, now: datetime | None = None, limit: int | None = None
) -> int:
    """One round: claim what is due at `now`, send it, record the results. Returns how many
    emails were attempted. Tests call this directly; the worker thread calls it in a loop."""
    now = now or utc_now()
    server = parse_smtp_url(settings.smtp_url)
    concurrency = settings.mail_worker_concurrency
    # No more than can be sent at once: every claimed email's attempt starts right away, so
    # its lease covers the whole attempt (a claimed email waiting its turn could outlive it).
    claimed = claim_due(engine, settings, now, limit or concurrency)
    if not claimed:
        return 0

    def send_and_record(item: Claimed) -> None:
        error = attempt(server, item, settings)
        # Record at the wall-clock time of the answer, except when a test drives the clock.
        outcome_if_sent = "logged" if server is None else "sent"
        record(engine, settings, item, error, max(now, utc_now()), outcome_if_sent)

    with ThreadPoolExecutor(max_workers=min(concurrency, len(claimed))) as pool:
        list(pool.map(send_and_record, claimed))
    return len(claimed)


class MailWorker(PollingWorker):
    """A background thread running `deliver_due` until stopped."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        super().__init__(
            "mail-worker",
            lambda: deliver_due(engine, settings),
            settings.mail_worker_poll_seconds,
            lease_seconds(settings),
        )
