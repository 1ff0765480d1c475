"""The sync feed: positions of changes, and reading the changes after a token.

Why a client following `next_since` never misses a change
-------------------------------------------------------
Every write to a person's sessions first increments `user_account.feed_seq` with
`UPDATE ... RETURNING`, and stamps the changed session with the new value. That UPDATE takes
the person's row lock (PostgreSQL) or the database write lock (SQLite, where every
transaction is BEGIN IMMEDIATE) and holds it until commit. So for one person, the
transaction holding position N commits before any transaction can even obtain N+1: positions
become visible strictly in order, and a reader that has seen N has seen everything below it.
(A global auto-increment would not do: on PostgreSQL, 41 may commit after 42.)

A session keeps only its latest position, so a session changed several times between polls
appears once, in its latest state, and never an older state after a newer one.
"""

import base64
import binascii
import uuid
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Integer,
    Row,
    Select,
    Update,
    bindparam,
    case,
    func,
    select,
    update,
)
from sqlmodel import Session

from api.db import write_transaction
from api.driver import DriverConnection
from api.errors import INVALID_TOKEN, BadRequest, Gone, Unauthorized
from api.services.session_pages import PAGE_COLUMNS, read_page
from models.release_session import SESSION_TABLE, ChangeFeed, ReleaseSession
from models.user import User

_TOKEN_PREFIX = b"rl1:"


_USER_TABLE = User.__table__  # type: ignore[attr-defined]
# Prebuilt: every write runs it.
_RESERVE_POSITIONS = (
    update(_USER_TABLE)
    .where(_USER_TABLE.c.id == bindparam("user_id"))
    .values(feed_seq=_USER_TABLE.c.feed_seq + bindparam("count"))
    .returning(_USER_TABLE.c.feed_seq, _USER_TABLE.c.token_version)
)


def next_feed_seq(
    connection: DriverConnection,
    user_id: uuid.UUID,
    count: int = 1,
    token_version: int | None = None,
) -> int:
    """Reserve `count` feed positions for the user; returns the first. Locks the user row.

    Every write to a person's sessions starts here, so this is also where a write learns that
    its credential no longer holds: 401 when the account is gone (deleted since the access
    token was checked) or when `token_version` (an access token's; None for an API key) is no
    longer the account's (the password changed since the token was issued). The caller's
    transaction is then rolled back, with nothing written.
    """
    rows = connection.execute(_RESERVE_POSITIONS, {"user_id": user_id, "count": count})
    last = next(iter(rows), None)
    if last is None or (token_version is not None and last[1] != token_version):
        raise Unauthorized(INVALID_TOKEN)
    return int(last[0]) - count + 1


@lru_cache(maxsize=64)
def _reserve_for_owners(count: int) -> tuple[Select[Any], Update]:
    """For `count` people at once: a statement that locks their rows in id order
    (PostgreSQL; SQLite's write lock already covers them), and one UPDATE that reserves each
    one's positions (ids `user_0`.., counts `count_0`..). Locking in one order everywhere
    keeps two processes' groups of writes from deadlocking each other."""
    ids = [bindparam(f"user_{i}", type_=_USER_TABLE.c.id.type) for i in range(count)]
    counts = [bindparam(f"count_{i}", type_=Integer) for i in range(count)]
    lock = (
        select(_USER_TABLE.c.id)
        .where(_USER_TABLE.c.id.in_(ids))
        .order_by(_USER_TABLE.c.id)
        .with_for_update()
    )
    step = case(*((_USER_TABLE.c.id == i, n) for i, n in zip(ids, counts, strict=True)))
    reserve = (
        update(_USER_TABLE)
        .where(_USER_TABLE.c.id.in_(ids))
        .values(feed_seq=_USER_TABLE.c.feed_seq + step)
        .returning(_USER_TABLE.c.id, _USER_TABLE.c.feed_seq, _USER_TABLE.c.token_version)
    )
    return lock, reserve


def reserve_feed_positions(
    connection: DriverConnection,
    counts: dict[uuid.UUID, int],
    token_versions: dict[uuid.UUID, set[int]],
) -> dict[uuid.UUID, int]:
    """next_feed_seq for several people in two statements; the first position of each.

    `token_versions`: for each person, the credential versions of the access tokens writing
    (none for API keys). Two different ones cannot both hold, so they fail the whole write
    (401), which a group of creates then retries one create at a time."""
    if any(len(versions) > 1 for versions in token_versions.values()):
        raise Unauthorized(INVALID_TOKEN)
    required = {
        user_id: next(iter(versions)) for user_id, versions in token_versions.items() if versions
    }
    if len(counts) == 1:
        [(user_id, count)] = counts.items()
        return {user_id: next_feed_seq(connection, user_id, count, required.get(user_id))}
    lock, reserve = _reserve_for_owners(len(counts))
    values: dict[str, Any] = {}
    for i, (user_id, count) in enumerate(counts.items()):
        values[f"user_{i}"], values[f"count_{i}"] = user_id, count
    if connection.dialect.name == "postgresql":
        connection.execute(lock, values)
    rows = connection.execute(reserve, values)
    last = {row[0]: row[1] for row in rows}
    if len(last) < len(counts):
        raise Unauthorized(INVALID_TOKEN)  # someone's account is gone
    if any(required.get(row[0], row[2]) != row[2] for row in rows):
        raise Unauthorized(INVALID_TOKEN)  # someone's password changed
    return {user_id: last[user_id] - count + 1 for user_id, count in counts.items()}


def encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(_TOKEN_PREFIX + str(seq).encode()).decode().rstrip("=")


def decode_token(token: str) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise BadRequest("Malformed 'since' token.") from None
    if not raw.startswith(_TOKEN_PREFIX) or not raw[len(_TOKEN_PREFIX) :].isdigit():
        raise BadRequest("Malformed 'since' token.")
    return int(raw[len(_TOKEN_PREFIX) :])


def _feed_position(db: Session, user_id: uuid.UUID, since: str) -> int:
    """The position `since` stands for; 400 for a token from the future, 410 for a purged one."""
    position = decode_token(since)
    user = db.get(User, user_id)
    assert user is not None
    if position > user.feed_seq:
        raise BadRequest("Unknown 'since' token.")
    if since and position < user.feed_purged_seq:
        raise Gone(
            "This sync token is older than the deletion history kept on the server. "
            "Discard the local copy and resync from the beginning (empty 'since')."
        )
    return position


def _changes_after(user_id: uuid.UUID, position: int, limit: int, columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .where(ReleaseSession.user_id == user_id, ReleaseSession.change_seq > position)  # type: ignore[arg-type]
        .order_by(ReleaseSession.change_seq)
        .limit(limit + 1)
    )


def changed_sessions(
    db: Session, user_id: uuid.UUID, since: str, limit: int
) -> tuple[list[Row[Any]], str, bool]:
    """Sessions changed after `since` (rows of every column), oldest change first; plus the
    next token and has_more."""
    position = _feed_position(db, user_id, since)
    statement = _changes_after(user_id, position, limit, SESSION_TABLE.c)
    rows = list(db.connection().execute(statement))
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_position = rows[-1].change_seq if rows else position
    return rows, encode_token(next_position), has_more


def change_feed(db: Session, user_id: uuid.UUID, since: str, limit: int) -> ChangeFeed:
    """One page of the sync feed (see changed_sessions) as the response."""
    position = _feed_position(db, user_id, since)
    statement = _changes_after(user_id, position, limit, PAGE_COLUMNS)
    documents, has_more = read_page(db, statement, limit)
    next_position = documents[-1]["change_seq"] if documents else position
    items = [
        {
            "id": document["id"],
            "deleted": document["deleted_at"] is not None,
            "session": None if document["deleted_at"] is not None else document,
        }
        for document in documents
    ]
    return ChangeFeed.model_validate(
        {"items": items, "next_since": encode_token(next_position), "has_more": has_more}
    )


def purge_tombstones(db: Session, now: datetime, retention: timedelta) -> int:
    """Delete tombstones older than the retention; older tokens then answer 410."""
    with write_transaction(db):
        cutoff = now - retention
        old = (
            select(ReleaseSession.user_id, func.max(ReleaseSession.change_seq))
            .where(ReleaseSession.deleted_at.is_not(None))  # type: ignore[union-attr]
            .where(ReleaseSession.deleted_at < cutoff)  # type: ignore[operator]
            .group_by(ReleaseSession.user_id)
        )
        watermarks = db.execute(old).all()
        purged = 0
        for user_id, max_seq in watermarks:
            db.execute(
                update(User)
                .where(User.id == user_id, User.feed_purged_seq < max_seq)  # type: ignore[arg-type]
                .values(feed_purged_seq=max_seq)
            )
            result = db.execute(
                ReleaseSession.__table__.delete().where(  # type: ignore[attr-defined]
                    ReleaseSession.user_id == user_id,
                    ReleaseSession.deleted_at.is_not(None),  # type: ignore[union-attr]
                    ReleaseSession.deleted_at < cutoff,  # type: ignore[operator]
                )
            )
            purged += result.rowcount or 0
        db.commit()
        return purged
