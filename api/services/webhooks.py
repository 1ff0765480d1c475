"""Webhooks: subscriptions, target checks (SSRF), signing, and the outbox of session events.

Events are written to `webhook_delivery` in the transaction of the change they describe
(`enqueue_session_events`), so an event exists if and only if its change committed. The
worker in `webhook_worker.py` delivers them.
"""

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, bindparam, func, insert, select
from sqlmodel import Session

from api.db import write_transaction
from api.errors import Conflict, NotFound, Unprocessable
from api.services import pagination
from api.services.pagination import encode_cursor
from models.base import ordered_id, utc_now
from models.coaching import Grant
from models.release_session import SessionPublic
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

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_WEBHOOKS_PER_ACCOUNT = 10

# (event type, session id, the session in its public shape or None when deleted)
# (event type, session id, the session's public shape -- or a function that builds it, so a
# write with no subscribed webhook never pays for it -- or None for a deletion)
SessionEvent = tuple[str, uuid.UUID, SessionPublic | Callable[[], SessionPublic] | None]


# --- targets (server-side request forgery) -----------------------------------------------


class UnsafeTarget(ValueError):
    """A webhook URL that must not be called."""


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 smuggled in IPv6 (::ffff:127.0.0.1, 6to4, Teredo) is judged as that IPv4.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None and not _is_public(embedded):
            return False
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global  # also shared (100.64/10), documentation, benchmarking ranges
    )


def split_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; UnsafeTarget when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeTarget("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeTarget("must be an http or https URL")
    if not parts.hostname:
        raise UnsafeTarget("must name a host")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def public_addresses(url: str) -> list[str]:
    """The addresses the URL's host resolves to, refusing it when any of them is not public.

    Every address must be public, not just the first: a resolver may answer in any order.
    """
    _scheme, host, port = split_target(url)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise UnsafeTarget(f"host {host!r} does not resolve") from None
        candidates = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not candidates:
        raise UnsafeTarget(f"host {host!r} does not resolve")
    for address in candidates:
        if not _is_public(address):
            raise UnsafeTarget(
                f"resolves to a loopback, private, link-local or otherwise non-public address "
                f"({address})"
            )
    return [str(address) for address in candidates]


def check_target(url: str, allow_private: bool) -> None:
    """422 (naming the `url` field) unless the URL is http(s) and, unless allowed, public."""
    try:
        split_target(url)
        if not allow_private:
            public_addresses(url)
    except UnsafeTarget as error:
        raise Unprocessable(
            f"url: {error}", [{"loc": ["body", "url"], "msg": str(error)}]
        ) from None


# --- signing -----------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks `webhook-signature` value: `v1,<base64 HMAC-SHA256>`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# --- subscriptions -----------------------------------------------------------------------


def _webhook_public(row: Webhook) -> WebhookPublic:
    return WebhookPublic.model_validate(
        {"id": row.id, "url": row.url, "events": row.event_list, "created_at": row.created_at}
    )


def create_webhook(
    db: Session, owner_id: uuid.UUID, data: WebhookCreate, *, allow_private_targets: bool
) -> WebhookCreated:
    with write_transaction(db):
        check_target(data.url, allow_private_targets)
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


# --- the outbox --------------------------------------------------------------------------


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


def subscribed_hooks(connection: Connection, client_ids: list[uuid.UUID]) -> dict[uuid.UUID, Hooks]:
    """The webhooks of each client's live coaches; clients without any are left out."""
    hooks: dict[uuid.UUID, Hooks] = {}
    for client_id, hook_id, events in connection.execute(
        _SUBSCRIBED_HOOKS, {"client_ids": client_ids}
    ):
        hooks.setdefault(client_id, []).append((hook_id, events))
    return hooks


_INSERT_DELIVERY = insert(WebhookDelivery.__table__)  # type: ignore[attr-defined]


def enqueue_session_events(
    connection: Connection,
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
