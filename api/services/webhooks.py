"""Webhook subscriptions: create, list and delete an account's webhooks, and read their
delivery log. Events reach the log through the outbox (webhook_outbox.py); the worker
(webhook_worker.py) delivers them."""

import uuid

from sqlalchemy import func, select
from sqlmodel import Session

from api.db import write_transaction
from api.errors import Conflict, NotFound
from api.services import pagination
from api.services.pagination import encode_cursor
from api.services.webhook_signing import new_secret
from api.services.webhook_targets import check_target
from models.webhook import (
    EVENT_TYPES,
    DeliveryList,
    DeliveryPublic,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
    WebhookList,
    WebhookPublic,
)

MAX_WEBHOOKS_PER_ACCOUNT = 10


def _webhook_public(row: Webhook) -> WebhookPublic:
    return WebhookPublic.model_validate(
        {"id": row.id, "url": row.url, "events": row.event_list, "created_at": row.created_at}
    )


def create_webhook(
    db: Session, owner_id: uuid.UUID, data: WebhookCreate, *, allow_private_targets: bool
) -> WebhookCreated:
    # Resolving the host may take up to the resolver's timeout: done before the write
    # transaction, so that no other write waits for it (SQLite's write lock is every write's).
    check_target(data.url, allow_private_targets)
    with write_transaction(db):
        count = db.execute(
            select(func.count()).select_from(Webhook).where(Webhook.user_id == owner_id)
        ).scalar_one()
        if count >= MAX_WEBHOOKS_PER_ACCOUNT:
            raise Conflict(
                f"An account has at most {MAX_WEBHOOKS_PER_ACCOUNT} webhooks; delete one first."
            )
        events = [event for event in EVENT_TYPES if event in data.events]
        row = Webhook(user_id=owner_id, url=data.url, events=" ".join(events), secret=new_secret())
        db.add(row)
        db.commit()
        return WebhookCreated(**_webhook_public(row).model_dump(), secret=row.secret)


def list_webhooks(db: Session, owner_id: uuid.UUID, limit: int, cursor: str | None) -> WebhookList:
    """The owner's webhooks, oldest first (secrets are never shown again)."""
    statement = pagination.after(
        select(Webhook).where(Webhook.user_id == owner_id), Webhook.created_at, Webhook.id, cursor
    )
    statement = statement.order_by(Webhook.created_at, Webhook.id).limit(limit + 1)  # type: ignore[arg-type]
    rows = list(db.execute(statement).scalars())
    return WebhookList(
        items=[_webhook_public(row) for row in rows[:limit]],
        next_cursor=pagination.next_cursor([(row.created_at, row.id) for row in rows], limit),
    )


def _own_webhook(db: Session, owner_id: uuid.UUID, webhook_id: uuid.UUID) -> Webhook:
    row = db.get(Webhook, webhook_id)
    if row is None or row.user_id != owner_id:
        raise NotFound("No such webhook.")
    return row


def delete_webhook(db: Session, owner_id: uuid.UUID, webhook_id: uuid.UUID) -> None:
    """Delete the webhook and its delivery log; pending deliveries are never sent."""
    with write_transaction(db):
        row = _own_webhook(db, owner_id, webhook_id)
        db.delete(row)
        db.commit()


def list_deliveries(
    db: Session, owner_id: uuid.UUID, webhook_id: uuid.UUID, limit: int, cursor: str | None
) -> DeliveryList:
    """The webhook's delivery log, newest first."""
    _own_webhook(db, owner_id, webhook_id)
    statement = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    statement = pagination.after(
        statement, WebhookDelivery.created_at, WebhookDelivery.id, cursor, descending=True
    )
    statement = statement.order_by(
        WebhookDelivery.created_at.desc(),  # type: ignore[attr-defined]
        WebhookDelivery.id.desc(),  # type: ignore[attr-defined]
    ).limit(limit + 1)
    rows = list(db.execute(statement).scalars())
    items = [
        DeliveryPublic.model_validate(
            {
                "id": row.id,
                "event_type": row.event_type,
                "status": row.status,
                "attempts": row.attempts,
                "last_status_code": row.last_status_code,
                "client_id": row.client_id,
                "session_id": row.session_id,
                "created_at": row.created_at,
                "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
            }
        )
        for row in rows[:limit]
    ]
    next_cursor = (
        encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    )
    return DeliveryList(items=items, next_cursor=next_cursor)
