"""Webhooks for coach dashboards: subscriptions and the delivery outbox."""

import uuid
from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Column, Index, Integer, String, Text
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.base import ResponseModel, UTCDateTime, new_id, utc_now

EventType = Literal[
    "session.created", "session.updated", "session.deleted", "session.flagged", "grant.ended"
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
GRANT_ENDED = "grant.ended"
DeliveryStatus = Literal["pending", "delivered", "failed"]
# The events whose body carries the session's content (every session event but its deletion):
# one of a session deleted since is never sent.
SESSION_CONTENT_EVENTS: tuple[str, ...] = tuple(
    event for event in EVENT_TYPES if event.startswith("session.") and event != "session.deleted"
)
# Why a link ended, in `grant.ended`.
GrantEndReason = Literal["revoked_by_client", "ended_by_coach", "account_deleted"]


def _all_events() -> list[EventType]:
    return list(get_args(EventType))


class Webhook(SQLModel, table=True):
    """A coach's subscription: events about their clients (sessions, ended links) are POSTed to
    `url`."""

    __tablename__ = "webhook"
    __table_args__ = (Index("ix_webhook_user_created", "user_id", "created_at", "id"),)

    id: uuid.UUID = SQLField(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = SQLField(foreign_key="user_account.id", ondelete="CASCADE")
    url: str = SQLField(max_length=2048)
    # Space-separated event types, e.g. "session.created session.deleted".
    events: str = SQLField(max_length=200)
    # `whsec_` + base64: kept readable because every delivery is signed with it.
    secret: str = SQLField(max_length=100)
    created_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)

    @property
    def event_list(self) -> list[str]:
        return self.events.split()


class WebhookDelivery(SQLModel, table=True):
    """The outbox: one event for one webhook, written in the transaction of the change.

    A delivery belongs to its webhook (deleted with it). `client_id` is a bare id, not a
    foreign key: `grant.ended` must reach the coach after the grant and, on erasure, the
    client's account are gone, so the client's other deliveries are deleted explicitly
    (webhook_outbox.delete_client_deliveries).
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        # The worker's poll: pending deliveries whose next attempt is due.
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_webhook_created", "webhook_id", "created_at", "id"),
        # A session's deletion withdraws its queued events (webhook_outbox.withdraw_...).
        Index("ix_webhook_delivery_session", "session_id"),
        # An erasure deletes the client's deliveries (webhook_outbox.delete_client_deliveries).
        Index("ix_webhook_delivery_client", "client_id"),
    )

    id: uuid.UUID = SQLField(default_factory=new_id, primary_key=True)
    webhook_id: uuid.UUID = SQLField(foreign_key="webhook.id", ondelete="CASCADE")
    event_type: str = SQLField(sa_column=Column(String(32), nullable=False))
    client_id: uuid.UUID
    # The session a session event is about; NULL for `grant.ended`.
    session_id: uuid.UUID | None = None
    # The body to send; NULL once the delivery is delivered, failed or withdrawn: the session's
    # content is kept only while it may still be sent (the metadata stays for the log).
    payload: str | None = SQLField(default=None, sa_column=Column(Text, nullable=True))
    status: str = SQLField(default="pending", sa_column=Column(String(16), nullable=False))
    attempts: int = SQLField(default=0, sa_column=Column(Integer, nullable=False, default=0))
    last_status_code: int | None = SQLField(default=None, sa_column=Column(Integer, nullable=True))
    next_attempt_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    created_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)


# --- API schemas -------------------------------------------------------------------------


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2048,
            description="An http(s) URL. Hosts that resolve to loopback, private, link-local or "
            "other non-public addresses are refused unless the server allows them.",
        ),
    ]
    events: list[EventType] = Field(
        default_factory=_all_events,
        min_length=1,
        max_length=len(EVENT_TYPES),
        description="Event types to receive; default all of them.",
    )

    @field_validator("events")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists an event type more than once")
        return value


class WebhookPublic(ResponseModel):
    id: uuid.UUID
    url: str
    events: list[EventType]
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="`whsec_` + base64 of the signing key. Shown only in this response."
    )


class WebhookList(ResponseModel):
    items: list[WebhookPublic]
    next_cursor: str | None


class DeliveryPublic(ResponseModel):
    id: uuid.UUID = Field(description="Also the `webhook-id` header of every attempt.")
    event_type: EventType
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None = Field(
        description="HTTP status of the last attempt; null before the first answer or on a "
        "timeout / connection error."
    )
    client_id: uuid.UUID = Field(
        description="The client the event is about (for `grant.ended`, possibly of an account "
        "erased since: only this bare id remains)."
    )
    session_id: uuid.UUID | None = Field(
        description="The session a `session.*` event is about; null for `grant.ended`."
    )
    created_at: datetime
    next_attempt_at: datetime | None = Field(
        description="When the next attempt is due while pending; null otherwise."
    )


class DeliveryList(ResponseModel):
    items: list[DeliveryPublic]
    next_cursor: str | None
