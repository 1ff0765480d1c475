"""The webhook outbox: events written to `webhook_delivery` in the transaction of the change
they describe (`enqueue_session_events`, `enqueue_grant_ended`), so an event exists if and only
if its change committed. The worker in `webhook_worker.py` delivers them.

A session's deletion withdraws its queued content events in the same transaction
(`withdraw_session_events`): their bodies hold what the deletion removes.

`grant.ended` is the one event sent after the link it is about is gone: its delivery depends
on no grant, session or client row (only on the coach's webhook), and it carries nothing of
the client but their bare id. An erasure deletes the client's other deliveries
(`delete_client_deliveries`).
"""

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, literal_column, null, select, update
from sqlmodel import Session, col

from api.driver import DriverConnection
from models.base import ordered_id, utc_now
from models.coaching import Grant
from models.release_session import SessionPublic
from models.webhook import (
    GRANT_ENDED,
    SESSION_CONTENT_EVENTS,
    GrantEndReason,
    Webhook,
    WebhookDelivery,
)

# What the outbox functions write through: a request's DriverConnection, or an ORM session /
# Core connection inside write_transaction.
Executor = DriverConnection | Connection | Session

# (event type, session id, the session's public shape -- or a function that builds it, so a
# write with no subscribed webhook never pays for it -- or None for a deletion)
SessionEvent = tuple[str, uuid.UUID, SessionPublic | Callable[[], SessionPublic] | None]


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event_body(
    event_type: str,
    client_id: uuid.UUID,
    session_id: uuid.UUID,
    session: SessionPublic | None,
    timestamp: datetime,
) -> str:
    document: dict[str, Any] = {
        "type": event_type,
        "timestamp": _rfc3339(timestamp),
        "data": {
            "client_id": str(client_id),
            "session_id": str(session_id),
            "session": session.model_dump(mode="json") if session is not None else None,
        },
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


# Every session write runs this (prebuilt): the webhooks of each client's live coaches, for
# one client or for a whole group of creates in one query. DISTINCT: a coach's hook once, as
# many live grants as they hold.
_SUBSCRIBED_HOOKS = (
    select(Grant.client_id, Webhook.id, Webhook.events)
    .distinct()
    .join(Webhook, Webhook.user_id == Grant.coach_id)  # type: ignore[arg-type]
    .where(
        Grant.client_id.in_(bindparam("client_ids", expanding=True)),  # type: ignore[attr-defined]
        Grant.revoked_at.is_(None),  # type: ignore[union-attr]
    )
)

Hooks = list[tuple[uuid.UUID, str]]  # (webhook id, its events) of a client's coaches


def subscribed_hooks(
    connection: DriverConnection, client_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Hooks]:
    """The webhooks of each client's live coaches; clients without any are left out."""
    hooks: dict[uuid.UUID, Hooks] = {}
    for client_id, hook_id, events in connection.execute(
        _SUBSCRIBED_HOOKS, {"client_ids": client_ids}
    ):
        hooks.setdefault(client_id, []).append((hook_id, events))
    return hooks


_INSERT_DELIVERY = insert(WebhookDelivery.__table__)  # type: ignore[attr-defined]


def enqueue_session_events(
    connection: DriverConnection,
    owner_id: uuid.UUID,
    events: Sequence[SessionEvent],
    hooks: Hooks | None = None,
) -> None:
    """Queue one delivery per event for every subscribed webhook of the owner's live coaches
    (`hooks`, when the caller has looked them up already: subscribed_hooks).

    Call inside the transaction of the change, before its commit: the events commit or roll
    back with it. Does not commit.
    """
    if not events:
        return
    if hooks is None:
        hooks = subscribed_hooks(connection, [owner_id]).get(owner_id, [])
    if not hooks:
        return
    now = utc_now()
    rows: list[dict[str, Any]] = []
    for event_type, session_id, session in events:
        body: str | None = None
        for hook_id, hook_events in hooks:
            if event_type not in hook_events.split():
                continue
            if body is None:
                public = session() if callable(session) else session
                body = event_body(event_type, owner_id, session_id, public, now)
            rows.append(
                {
                    "id": ordered_id(),
                    "webhook_id": hook_id,
                    "event_type": event_type,
                    "client_id": owner_id,
                    "session_id": session_id,
                    "payload": body,
                    "status": "pending",
                    "attempts": 0,
                    "last_status_code": None,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if rows:
        connection.execute(_INSERT_DELIVERY, rows)


_DELIVERY = WebhookDelivery.__table__  # type: ignore[attr-defined]
# Constants are written into the SQL: with an expanding IN (:list), the driver would convert
# only the list's values, and the session id would reach the database unconverted.
_WITHDRAW_SESSION_EVENTS = (
    update(_DELIVERY)
    .where(
        _DELIVERY.c.session_id == bindparam("session_id"),
        _DELIVERY.c.status == literal_column("'pending'"),
        _DELIVERY.c.event_type.in_([literal_column(f"'{e}'") for e in SESSION_CONTENT_EVENTS]),
    )
    .values(status=literal_column("'failed'"), payload=null(), updated_at=bindparam("now"))
)


def withdraw_session_events(
    connection: DriverConnection, session_id: uuid.UUID, now: datetime
) -> None:
    """Withdraw the session's queued content events (SESSION_CONTENT_EVENTS: created,
    updated, flagged): each is marked
    `failed` with its attempts unchanged, and its payload is deleted. For the deletion of the
    session, in its transaction. An attempt already in flight is not recalled; the worker
    checks again just before it sends (webhook_worker.still_deliverable).
    """
    connection.execute(_WITHDRAW_SESSION_EVENTS, {"session_id": session_id, "now": now})


def grant_ended_body(
    client_id: uuid.UUID, grant_id: uuid.UUID, reason: GrantEndReason, timestamp: datetime
) -> str:
    document = {
        "type": GRANT_ENDED,
        "timestamp": _rfc3339(timestamp),
        "data": {"client_id": str(client_id), "grant_id": str(grant_id), "reason": reason},
    }
    return json.dumps(document, separators=(",", ":"))


_COACH_HOOKS = select(col(Webhook.id), col(Webhook.events)).where(
    col(Webhook.user_id) == bindparam("coach_id")
)


def enqueue_grant_ended(
    db: Executor,
    *,
    coach_id: uuid.UUID,
    client_id: uuid.UUID,
    grant_id: uuid.UUID,
    reason: GrantEndReason,
    now: datetime | None = None,
) -> None:
    """Queue `grant.ended` for every webhook of the coach subscribed to it: the coach lost
    this client and should drop their data.

    Call once per ended link, inside the transaction that ends it (after the conditional
    UPDATE that ended it changed a row, or before an erasure deletes the grant): the event
    commits or rolls back with it. Does not commit. The body carries the client's bare id and
    nothing else of theirs, and the delivery needs neither the grant nor the client's account
    to exist when it is sent.
    """
    hooks = [
        hook_id
        for hook_id, events in db.execute(_COACH_HOOKS, {"coach_id": coach_id})  # type: ignore[arg-type]
        if GRANT_ENDED in events.split()
    ]
    if not hooks:
        return
    now = now or utc_now()
    body = grant_ended_body(client_id, grant_id, reason, now)
    rows = [
        {
            "id": ordered_id(),
            "webhook_id": hook_id,
            "event_type": GRANT_ENDED,
            "client_id": client_id,
            "session_id": None,
            "payload": body,
            "status": "pending",
            "attempts": 0,
            "last_status_code": None,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for hook_id in hooks
    ]
    db.execute(_INSERT_DELIVERY, rows)


_DELETE_CLIENT_DELIVERIES = delete(_DELIVERY).where(
    _DELIVERY.c.client_id == bindparam("client_id"),
    _DELIVERY.c.event_type != literal_column(f"'{GRANT_ENDED}'"),
)


def delete_client_deliveries(db: Executor, client_id: uuid.UUID) -> None:
    """For an erasure, in its transaction: delete every delivery about the client (their
    session events, sent or not, to any coach) but the `grant.ended` ones, which must still
    reach the coaches and hold only the client's bare id. (`client_id` is no foreign key, so
    deleting the account does not do this.) Does not commit."""
    db.execute(_DELETE_CLIENT_DELIVERIES, {"client_id": client_id})
