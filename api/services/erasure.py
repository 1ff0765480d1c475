"""Erasing a person (DELETE /v1/me): everything of theirs, in one transaction.

The transaction first locks the account row (the row every session write locks first,
api/services/sync.py), so a write racing the erasure either commits before it, and is erased
with the rest, or waits and then finds no account: 401. Each coach the person had granted is
told with `grant.ended` (`reason: "account_deleted"`), queued in the same transaction; that
delivery carries only the bare client id and belongs to the coach's webhook, so it is the one
trace of the person left, until it is delivered.

The rows are deleted explicitly, children before parents, rather than left to ON DELETE
CASCADE: the list below is the contract's list, and tests/test_erasure.py scans every table
afterwards.
"""

import uuid

from sqlalchemy import Connection, delete, or_, select, update
from sqlmodel import Session

from api.db import write_transaction
from api.errors import Forbidden, Unauthorized
from api.security import verify_password
from api.services import mail_outbox
from api.services.webhook_outbox import delete_client_deliveries, enqueue_grant_ended
from models.api_key import ApiKey
from models.base import utc_now
from models.coaching import Grant, Invite
from models.password_reset import PasswordResetToken
from models.release_session import Rating, ReleaseSession
from models.report_link import ReportLink
from models.user import User
from models.webhook import Webhook, WebhookDelivery

ACCOUNT_DELETED = "account_deleted"


def erase_account(db: Session, user_id: uuid.UUID, password: str) -> None:
    """Erase the person once `password` is verified (403 otherwise)."""
    user = db.get(User, user_id)
    if user is None:
        raise Unauthorized()
    if not verify_password(password, user.password_hash):
        raise Forbidden("The password is not correct.")
    with write_transaction(db) as connection:
        _lock_account(connection, user_id)
        _tell_coaches(connection, user_id)
        _delete_everything_of(db, connection, user_id)
        db.commit()


def _lock_account(connection: Connection, user_id: uuid.UUID) -> None:
    """Take the account row's lock (SQLite's write lock already covers everything); 401 when
    the account is gone already (a concurrent erasure won)."""
    locked = connection.execute(
        update(User.__table__)  # type: ignore[arg-type]
        .where(User.__table__.c.id == user_id)  # type: ignore[attr-defined]
        .values(feed_seq=User.__table__.c.feed_seq)  # type: ignore[attr-defined]
    )
    if locked.rowcount != 1:
        raise Unauthorized()


def _tell_coaches(connection: Connection, user_id: uuid.UUID) -> None:
    live = connection.execute(
        select(Grant.id, Grant.coach_id).where(
            Grant.client_id == user_id,  # type: ignore[arg-type]
            Grant.revoked_at.is_(None),  # type: ignore[union-attr]
        )
    ).all()
    now = utc_now()
    for grant_id, coach_id in live:
        connection.execute(
            update(Grant.__table__).where(Grant.__table__.c.id == grant_id).values(revoked_at=now)  # type: ignore[attr-defined]
        )
        enqueue_grant_ended(
            connection,
            coach_id=coach_id,
            client_id=user_id,
            grant_id=grant_id,
            reason=ACCOUNT_DELETED,
        )


def _delete_everything_of(db: Session, connection: Connection, user_id: uuid.UUID) -> None:
    own_webhooks = select(Webhook.id).where(Webhook.user_id == user_id)  # type: ignore[arg-type]
    statements = [
        delete(Rating).where(Rating.user_id == user_id),  # type: ignore[arg-type]
        delete(ReleaseSession).where(ReleaseSession.user_id == user_id),  # type: ignore[arg-type]
        # Their own webhooks' deliveries (about their clients).
        delete(WebhookDelivery).where(WebhookDelivery.webhook_id.in_(own_webhooks)),  # type: ignore[attr-defined]
        delete(Webhook).where(Webhook.user_id == user_id),  # type: ignore[arg-type]
        delete(ApiKey).where(ApiKey.user_id == user_id),  # type: ignore[arg-type]
        delete(Grant).where(
            or_(Grant.client_id == user_id, Grant.coach_id == user_id)  # type: ignore[arg-type]
        ),
        delete(Invite).where(Invite.coach_id == user_id),  # type: ignore[arg-type]
        update(Invite)
        .where(Invite.redeemed_by_id == user_id)  # type: ignore[arg-type]
        .values(redeemed_by_id=None),
        delete(PasswordResetToken).where(PasswordResetToken.user_id == user_id),  # type: ignore[arg-type]
        delete(ReportLink).where(ReportLink.user_id == user_id),  # type: ignore[arg-type]
    ]
    for statement in statements:
        connection.execute(statement)
    # Every delivery about them in a coach's outbox, but the grant.ended just queued.
    delete_client_deliveries(connection, user_id)
    mail_outbox.delete_emails_of(db, user_id)
    connection.execute(delete(User).where(User.id == user_id))  # type: ignore[arg-type]
