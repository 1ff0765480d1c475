"""Passwords after registration: changing one (the person, signed in) and resetting a
forgotten one (by email, following the OWASP Forgot Password Cheat Sheet).

Every change of password bumps the account's credential version (User.token_version), which
every access token carries: a token issued before the change is refused from then on, on
reads (accounts.caller_from_token) and on writes (sync.next_feed_seq). API keys do not depend
on it and keep working. The account's email gets a notice, queued in the transaction of the
change. The Argon2 work happens before the write transaction, never under the SQLite write
lock.

A reset token is 256 random bits, sent only by email and stored only as its SHA-256; it lives
30 minutes, works once, and a newer request voids the older ones. Asking for one answers the
same whether or not the account exists, and does the same work: a write transaction that voids
tokens (none for an unknown email) and commits.
"""

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import Connection, delete, insert, select, update
from sqlmodel import Session

from api.db import write_transaction
from api.errors import BadRequest, Forbidden, Unauthorized
from api.security import hash_password, hash_secret, verify_password
from api.services import emails
from models.base import new_id, utc_now
from models.password_reset import PasswordResetToken
from models.user import User

RESET_LIFETIME = timedelta(minutes=30)
INVALID_RESET_TOKEN = "This reset token is unknown, used or expired. Ask for a new one."
_USER_TABLE = User.__table__  # type: ignore[attr-defined]
_RESET_TABLE = PasswordResetToken.__table__  # type: ignore[attr-defined]


def change_password(db: Session, user_id: uuid.UUID, current: str, new: str, base_url: str) -> None:
    """Set `new` once `current` is verified (403 otherwise)."""
    user = db.get(User, user_id)
    if user is None:  # erased since the token was checked
        raise Unauthorized()
    if not verify_password(current, user.password_hash):
        raise Forbidden("The current password is not correct.")
    new_hash = hash_password(new)
    with write_transaction(db) as connection:
        # Only over the hash that was verified: a concurrent change wins, this one is refused.
        if not _set_password(connection, user_id, new_hash, expected_hash=user.password_hash):
            raise Forbidden("The password changed meanwhile; sign in again.")
        emails.queue_password_changed(db, user, utc_now(), base_url)
        db.commit()


def request_reset(db: Session, email: str, base_url: str) -> None:
    """Email a reset link to the account of `email`, if there is one."""
    user = db.scalars(select(User).where(User.email == email.lower())).first()  # type: ignore[arg-type]
    token = secrets.token_urlsafe(32)
    with write_transaction(db) as connection:
        owner = user.id if user is not None else uuid.uuid4()
        connection.execute(delete(_RESET_TABLE).where(_RESET_TABLE.c.user_id == owner))
        if user is not None:
            now = utc_now()
            connection.execute(
                insert(_RESET_TABLE).values(
                    id=new_id(),
                    user_id=user.id,
                    token_hash=hash_secret(token),
                    created_at=now,
                    expires_at=now + RESET_LIFETIME,
                )
            )
            emails.queue_password_reset(db, user, token, base_url)
        db.commit()


def reset_token_is_live(db: Session, token: str) -> bool:
    live = (_RESET_TABLE.c.token_hash == hash_secret(token)) & (
        _RESET_TABLE.c.expires_at > utc_now()
    )
    return db.connection().execute(select(_RESET_TABLE.c.id).where(live)).first() is not None


def confirm_reset(db: Session, token: str, new: str, base_url: str) -> None:
    """Set `new` as the password of the token's account and use the token up; 400 for an
    unknown, used or expired token (checked before any Argon2 work)."""
    token_hash = hash_secret(token)
    live = (_RESET_TABLE.c.token_hash == token_hash) & (_RESET_TABLE.c.expires_at > utc_now())
    if db.connection().execute(select(_RESET_TABLE.c.id).where(live)).first() is None:
        raise BadRequest(INVALID_RESET_TOKEN)
    new_hash = hash_password(new)
    with write_transaction(db) as connection:
        used = connection.execute(
            delete(_RESET_TABLE).where(live).returning(_RESET_TABLE.c.user_id)
        ).first()
        if used is None:  # used by a concurrent request meanwhile
            raise BadRequest(INVALID_RESET_TOKEN)
        user_id = used[0]
        connection.execute(delete(_RESET_TABLE).where(_RESET_TABLE.c.user_id == user_id))
        if not _set_password(connection, user_id, new_hash, expected_hash=None):
            raise BadRequest(INVALID_RESET_TOKEN)  # the account was erased meanwhile
        user = db.get(User, user_id)
        assert user is not None
        emails.queue_password_changed(db, user, utc_now(), base_url)
        db.commit()


def _set_password(
    connection: Connection, user_id: uuid.UUID, new_hash: str, *, expected_hash: str | None
) -> bool:
    """Store the hash and void every access token issued so far; False when the account is
    gone (or its hash is no longer `expected_hash`, when given)."""
    statement = (
        update(_USER_TABLE)
        .where(_USER_TABLE.c.id == user_id)
        .values(password_hash=new_hash, token_version=_USER_TABLE.c.token_version + 1)
    )
    if expected_hash is not None:
        statement = statement.where(_USER_TABLE.c.password_hash == expected_hash)
    return connection.execute(statement).rowcount == 1
