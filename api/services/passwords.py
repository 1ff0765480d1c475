"""Passwords after registration: changing one (the person, signed in) and resetting a
forgotten one (by email).

Every change of password bumps the account's credential version (User.token_version), which
every access token carries: a token issued before the change is refused from then on, on
reads (accounts.caller_from_token) and on writes (sync.next_feed_seq). API keys do not depend
on it and keep working. The Argon2 work happens before the write transaction, never under the
SQLite write lock.
"""

import uuid

from sqlalchemy import Connection, update
from sqlmodel import Session

from api.db import write_transaction
from api.errors import Forbidden, Unauthorized
from api.security import hash_password, verify_password
from models.user import User

_USER_TABLE = User.__table__  # type: ignore[attr-defined]


def change_password(db: Session, user_id: uuid.UUID, current: str, new: str) -> None:
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
