"""The email outbox: an email is a `mail_outbox` row written in the transaction of the change
that causes it (`queue_email`), so it exists if and only if the change committed, and no
request waits for a mail server. The worker in `mail_worker.py` sends it.

Links in emails start with `Settings.public_base_url` (PUBLIC_BASE_URL, without a trailing
slash): f"{settings.public_base_url}/reset-password?token=...".
"""

import uuid

from sqlalchemy import delete, insert
from sqlmodel import Session

from models.base import ordered_id, utc_now
from models.mail import MailOutbox

_INSERT = insert(MailOutbox.__table__)  # type: ignore[attr-defined]
MAX_RECIPIENT = 320
MAX_SUBJECT = 255


def _one_line(name: str, value: str, longest: int) -> None:
    # A line break in a header would let text inject headers (or recipients).
    if "\r" in value or "\n" in value:
        raise ValueError(f"the email's {name} must be one line")
    if not value.strip() or len(value) > longest:
        raise ValueError(f"the email's {name} must have 1 to {longest} characters")


def queue_email(
    db: Session, *, user_id: uuid.UUID | None, to: str, subject: str, text: str, html: str
) -> None:
    """Queue one email (plain-text and HTML bodies of the same content) to `to`.

    Call inside the caller's write transaction, before its commit: the email commits or rolls
    back with the change. Does not commit. `user_id` is the account the email belongs to (NULL
    for none): erasing that account deletes it (delete_emails_of, and the foreign key's
    cascade). Raises ValueError for a recipient or subject that is not one sane line (a bug
    in the caller, not a user's mistake: addresses are validated at registration)."""
    _one_line("recipient", to, MAX_RECIPIENT)
    if "@" not in to:
        raise ValueError("the email's recipient must be an address")
    _one_line("subject", subject, MAX_SUBJECT)
    now = utc_now()
    db.execute(
        _INSERT,
        {
            "id": ordered_id(),
            "user_id": user_id,
            "recipient": to,
            "subject": subject,
            "text_body": text,
            "html_body": html,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
            "sent_at": None,
            "last_error": None,
        },
    )


def delete_emails_of(db: Session, user_id: uuid.UUID) -> None:
    """Delete every email of the account, queued or sent, in the caller's transaction (an
    erasure). Does not commit. An attempt in flight then records nothing."""
    db.execute(delete(MailOutbox).where(MailOutbox.user_id == user_id))  # type: ignore[arg-type]
