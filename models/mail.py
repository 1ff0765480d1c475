"""The email outbox: one row per email, written in the transaction of the change that causes it
and sent later by the mail worker (api/services/mail_worker.py)."""

import uuid
from datetime import datetime
from typing import Literal

from sqlalchemy import Column, Index, Integer, String, Text
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.base import UTCDateTime, ordered_id, utc_now

MailStatus = Literal["pending", "sent", "failed"]


class MailOutbox(SQLModel, table=True):
    """An email to send (pending), or the record that one was sent or given up (sent, failed).

    The bodies are personal data (and a reset email's body holds a live token): they are
    emptied (NULL) as soon as the email is sent or given up; the rest of the row stays as the
    record of what was sent to whom, until the account is erased."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        # The worker's poll: pending emails whose next attempt is due.
        Index("ix_mail_outbox_due", "status", "next_attempt_at"),
        # Erasure deletes a person's emails (delete_emails_of, and the cascade).
        Index("ix_mail_outbox_user_id", "user_id"),
    )

    id: uuid.UUID = SQLField(default_factory=ordered_id, primary_key=True)
    # The account the email is about. The foreign key cascades: deleting the account deletes
    # its emails even if an erasure forgot to. NULL for an email tied to no account.
    user_id: uuid.UUID | None = SQLField(
        default=None, foreign_key="user_account.id", ondelete="CASCADE"
    )
    recipient: str = SQLField(sa_column=Column(String(320), nullable=False))
    subject: str = SQLField(sa_column=Column(String(255), nullable=False))
    text_body: str | None = SQLField(default=None, sa_column=Column(Text, nullable=True))
    html_body: str | None = SQLField(default=None, sa_column=Column(Text, nullable=True))
    status: str = SQLField(default="pending", sa_column=Column(String(16), nullable=False))
    # Attempts begun: counted when an attempt is claimed, so one cut short by a crash counts.
    attempts: int = SQLField(default=0, sa_column=Column(Integer, nullable=False, default=0))
    # While pending, when the next attempt is due; while an attempt runs, the end of its lease
    # (another worker takes the email over only after that).
    next_attempt_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    created_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    sent_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    # What went wrong last, without personal data: the error's kind and the SMTP reply code
    # (an SMTP server's reply text often quotes the address, so it is never stored).
    last_error: str | None = SQLField(default=None, sa_column=Column(String(200), nullable=True))
