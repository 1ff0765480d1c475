"""The webhook delivery worker: claims due deliveries from the outbox and POSTs them.

All state lives in `webhook_delivery`, so a restarted process (or any other one) picks up
where the last left off. One round (`deliver_due`):

1. claim: in one short transaction, select due rows (`status = 'pending'`,
   `next_attempt_at <= now`) `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite serialises writers
   anyway), cancel those that must not be sent (a session event whose grant has ended, or
   one that carries the content of a session deleted since; never `grant.ended`), and lease
   the rest by pushing `next_attempt_at` past the longest an attempt can take. Commit.
   Another worker skips them while locked and, once committed, no longer sees them as due.
2. send, outside any transaction, a few at a time in threads (httpx, with a timeout), each
   checked again just before (a read): a grant may end, a session may be deleted meanwhile.
3. record each result in its own transaction, guarded by the attempt count it claimed, so a
   worker whose lease ran out cannot overwrite a newer result.

A cancelled delivery is `failed` with its attempts unchanged. The payload (the body, with the
session's content) is deleted once a delivery is delivered, failed or cancelled; the row's
metadata stays for the deliveries log.

A crash between 1 and 3 leaves the row pending with its lease; it is retried when the lease
expires. Delivery is therefore at least once: receivers deduplicate on `webhook-id`.
"""

import logging
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine, bindparam, select, tuple_, update
from sqlmodel import Session

from api.config import Settings
from api.db import write_transaction
from api.metrics import WEBHOOK_DELIVERIES
from api.services.polling import PollingWorker
from api.services.webhook_signing import sign
from api.services.webhook_targets import UnsafeTarget, public_addresses, split_target
from models.base import utc_now
from models.coaching import Grant
from models.release_session import SESSION_TABLE
from models.webhook import GRANT_ENDED, SESSION_CONTENT_EVENTS, Webhook, WebhookDelivery

logger = logging.getLogger("releaselog.webhooks")

USER_AGENT = "releaselog-webhooks/1"
JITTER = 0.2  # each delay is scaled by a random factor in [1 - JITTER, 1 + JITTER]


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    url: str
    secret: str
    payload: str
    attempts: int
    created_at: datetime


def retry_delay(base_seconds: float, attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after `attempts` failed ones: base * 2^(attempts-1),
    scaled by a random jitter factor so that receivers coming back up are not stampeded."""
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return base_seconds * 2 ** (attempts - 1) * factor


def lease_seconds(settings: Settings) -> float:
    # Name resolution, connect, write and read may each take up to the timeout.
    return 4 * settings.webhook_timeout_seconds + 60


_ANY_DUE = (
    select(WebhookDelivery.id)
    .where(
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= bindparam("now"),  # type: ignore[operator]
    )
    .limit(1)
)


def any_due(engine: Engine, now: datetime) -> bool:
    """Is a delivery due? A read (ix_webhook_delivery_due), so that an idle worker's poll never
    takes the write lock: on SQLite, that lock is every session write's."""
    with engine.connect() as connection:
        return connection.execute(_ANY_DUE, {"now": now}).first() is not None


def _undeliverable(
    db: Session, rows: list[WebhookDelivery], hooks: dict[uuid.UUID, Webhook]
) -> set[uuid.UUID]:
    """The ids of `rows` that must not be sent: a session event is delivered only while the
    grant is live (also one queued before it ended), and one that carries a session's content
    only while the session exists (its content never leaves after the deletion).
    `grant.ended` is exempt from both: it announces that the grant is gone, and needs neither
    the grant nor the client's account to exist."""
    rows = [row for row in rows if row.event_type != GRANT_ENDED]
    if not rows:
        return set()
    pairs = {(hooks[row.webhook_id].user_id, row.client_id) for row in rows}
    live_grants = select(Grant.coach_id, Grant.client_id).where(
        tuple_(Grant.coach_id, Grant.client_id).in_(pairs),
        Grant.revoked_at.is_(None),  # type: ignore[union-attr]
    )
    live = {(coach_id, client_id) for coach_id, client_id in db.execute(live_grants)}
    content = {row.session_id for row in rows if row.event_type in SESSION_CONTENT_EVENTS}
    existing: set[uuid.UUID] = set()
    if content:
        existing = set(
            db.execute(
                select(SESSION_TABLE.c.id).where(
                    SESSION_TABLE.c.id.in_(content), SESSION_TABLE.c.deleted_at.is_(None)
                )
            ).scalars()
        )
    return {
        row.id
        for row in rows
        if (hooks[row.webhook_id].user_id, row.client_id) not in live
        or (row.event_type in SESSION_CONTENT_EVENTS and row.session_id not in existing)
    }


def claim_due(engine: Engine, settings: Settings, now: datetime, limit: int) -> list[Claimed]:
    """Lease up to `limit` due deliveries; those that must not be sent are cancelled instead
    (failed, attempts unchanged, payload deleted)."""
    if not any_due(engine, now):
        return []
    with Session(engine, expire_on_commit=False) as db, write_transaction(db):
        rows = list(
            db.execute(
                select(WebhookDelivery)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                )
                .order_by(WebhookDelivery.next_attempt_at)  # type: ignore[arg-type]
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if not rows:
            db.rollback()
            return []
        hooks = {
            hook.id: hook
            for hook in db.execute(
                select(Webhook).where(Webhook.id.in_({row.webhook_id for row in rows}))  # type: ignore[attr-defined]
            ).scalars()
        }
        refused = _undeliverable(db, rows, hooks)
        lease_until = now + timedelta(seconds=lease_seconds(settings))
        claimed: list[Claimed] = []
        for row in rows:
            hook = hooks[row.webhook_id]
            if row.id in refused or row.payload is None:
                row.status = "failed"
                row.payload = None
                row.updated_at = now
                WEBHOOK_DELIVERIES.labels(outcome="cancelled").inc()
            else:
                row.next_attempt_at = lease_until
                claimed.append(
                    Claimed(
                        row.id, hook.url, hook.secret, row.payload, row.attempts, row.created_at
                    )
                )
            db.add(row)
        db.commit()
        return claimed


def still_deliverable(engine: Engine, claimed: Claimed) -> bool:
    """Just before sending (a read): is the claimed delivery still pending at the attempt it
    was claimed for, and may it still be sent? Between the claim and the send, the grant may
    have ended, the session been deleted (which withdraws its events) or the webhook deleted."""
    with Session(engine) as db:
        row = db.execute(
            select(WebhookDelivery).where(
                WebhookDelivery.id == claimed.id,  # type: ignore[arg-type]
                WebhookDelivery.status == "pending",  # type: ignore[arg-type]
                WebhookDelivery.attempts == claimed.attempts,  # type: ignore[arg-type]
            )
        ).scalar_one_or_none()
        hook = db.get(Webhook, row.webhook_id) if row is not None else None
        if row is None or hook is None:
            return False
        return row.id not in _undeliverable(db, [row], {hook.id: hook})


def cancel(engine: Engine, claimed: Claimed, now: datetime) -> None:
    """Cancel a claimed delivery that must no longer be sent: failed, its attempts unchanged,
    its payload deleted (guarded like `record`)."""
    with Session(engine) as db, write_transaction(db):
        result = db.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == claimed.id,  # type: ignore[arg-type]
                WebhookDelivery.status == "pending",  # type: ignore[arg-type]
                WebhookDelivery.attempts == claimed.attempts,  # type: ignore[arg-type]
            )
            .values(status="failed", payload=None, updated_at=now)
        )
        db.commit()
    if result.rowcount:  # type: ignore[attr-defined]
        WEBHOOK_DELIVERIES.labels(outcome="cancelled").inc()


def _pinned_request(url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """Resolve once, check every address, and send to that address: the name cannot be
    re-resolved to a private address between the check and the connection (DNS rebinding).
    TLS still verifies the certificate against the host name (SNI)."""
    scheme, host, _port = split_target(url)
    address = public_addresses(url)[0]
    original = httpx.URL(url)
    pinned = str(original.copy_with(host=address))
    headers = {"host": original.netloc.decode("ascii")}
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    return pinned, headers, extensions


def send(claimed: Claimed, settings: Settings) -> int | None:
    """POST one delivery; the response status, or None on a refused target, timeout or error."""
    body = claimed.payload.encode()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": str(claimed.id),
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(claimed.secret, str(claimed.id), timestamp, body),
    }
    url = claimed.url
    extensions: dict[str, str] = {}
    try:
        if not settings.webhook_allow_private_targets:
            url, host_header, extensions = _pinned_request(claimed.url)
            headers.update(host_header)
        with (
            httpx.Client(
                timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
            ) as client,
            client.stream(
                "POST", url, content=body, headers=headers, extensions=extensions
            ) as response,
        ):
            return response.status_code  # the body is never read
    except UnsafeTarget:
        # Not the reason itself: it names the URL's host and addresses.
        logger.warning("webhook delivery %s refused: its URL is not allowed", claimed.id)
    except httpx.HTTPError as error:
        logger.info("webhook delivery %s failed: %s", claimed.id, type(error).__name__)
    return None


def record(
    engine: Engine, settings: Settings, claimed: Claimed, status_code: int | None, now: datetime
) -> str:
    """Store the outcome of one attempt; returns delivered, retry or failed."""
    attempts = claimed.attempts + 1
    values: dict[str, object] = {
        "attempts": attempts,
        "last_status_code": status_code,
        "updated_at": now,
    }
    # Once delivered or failed, the body (the session's content) is not kept: only the
    # metadata the deliveries log shows.
    if status_code is not None and 200 <= status_code < 300:
        outcome = "delivered"
        values.update(status="delivered", payload=None)
    else:
        give_up_at = claimed.created_at + timedelta(seconds=settings.webhook_retry_window_seconds)
        if now >= give_up_at:
            outcome = "failed"
            values.update(status="failed", payload=None)
        else:
            outcome = "retry"
            delay = retry_delay(settings.webhook_retry_base_seconds, attempts)
            # The last attempt happens when the window closes, not somewhere before it.
            values["next_attempt_at"] = min(now + timedelta(seconds=delay), give_up_at)
    with Session(engine) as db, write_transaction(db):
        result = db.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == claimed.id,  # type: ignore[arg-type]
                WebhookDelivery.status == "pending",  # type: ignore[arg-type]
                WebhookDelivery.attempts == claimed.attempts,  # type: ignore[arg-type]
            )
            .values(**values)
        )
        db.commit()
    if result.rowcount:  # type: ignore[attr-defined]
        WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
    return outcome


def deliver_due(
    engine: Engine, settings: Settings, now: datetime | None = None, limit: int | None = None
) -> int:
    """One round: claim what is due at `now`, send it, record the results. Returns how many
    deliveries were attempted. Tests call this directly; the worker thread calls it in a loop."""
    now = now or utc_now()
    concurrency = settings.webhook_worker_concurrency
    claimed = claim_due(engine, settings, now, limit or 2 * concurrency)
    if not claimed:
        return 0

    def attempt(item: Claimed) -> None:
        # Each step at the wall-clock time, except when a test drives the clock.
        if not still_deliverable(engine, item):
            cancel(engine, item, max(now, utc_now()))
            return
        status_code = send(item, settings)
        record(engine, settings, item, status_code, max(now, utc_now()))

    with ThreadPoolExecutor(max_workers=min(concurrency, len(claimed))) as pool:
        list(pool.map(attempt, claimed))
    return len(claimed)


class WebhookWorker(PollingWorker):
    """A background thread running `deliver_due` until stopped."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        super().__init__(
            "webhook-worker",
            lambda: deliver_due(engine, settings),
            settings.webhook_worker_poll_seconds,
            lease_seconds(settings),
        )
