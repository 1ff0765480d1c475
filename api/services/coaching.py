"""Coaches and clients: invites, grants and revocation (how a client lets a coach read their
data, and takes it back). Either side's end of a link queues `grant.ended` to the coach."""

import secrets
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlmodel import Session, col

from api.db import write_transaction
from api.errors import Conflict, NotFound
from api.security import hash_secret
from api.services import pagination
from api.services.access import has_live_grant
from api.services.webhook_outbox import enqueue_grant_ended
from models.base import utc_now
from models.coaching import Grant, GrantList, GrantPublic, Invite, InvitePublic
from models.user import PersonRef, User
from models.webhook import GrantEndReason

INVITE_LIFETIME = timedelta(days=7)
# 16 random bytes = 128 bits: far beyond guessing, even with many live invites.
INVITE_CODE_BYTES = 16
_UNKNOWN_CODE = "No such invite code, or it was already used or has expired."

_live_grant = col(Grant.revoked_at).is_(None)


def create_invite(db: Session, coach_id: uuid.UUID) -> InvitePublic:
    """A single-use code for one client to grant the coach read access; shown only here."""
    with write_transaction(db):
        code = secrets.token_urlsafe(INVITE_CODE_BYTES)
        invite = Invite(
            coach_id=coach_id, code_hash=hash_secret(code), expires_at=utc_now() + INVITE_LIFETIME
        )
        db.add(invite)
        db.commit()
        return InvitePublic(code=code, expires_at=invite.expires_at)


def redeem_invite(db: Session, client_id: uuid.UUID, code: str) -> GrantPublic:
    """Turn an invite code into a grant from the client to the invite's coach.

    Unknown, used, expired and the caller's own codes are all 404 and change nothing. The
    code is spent by one conditional UPDATE in the grant's transaction, so of several
    concurrent redeemers exactly one wins.
    """
    with write_transaction(db):
        now = utc_now()
        code_hash = hash_secret(code)
        redeemable = and_(
            col(Invite.code_hash) == code_hash,
            col(Invite.redeemed_at).is_(None),
            col(Invite.expires_at) > now,
            col(Invite.coach_id) != client_id,
        )
        found = db.execute(
            select(col(Invite.coach_id), col(User.display_name))
            .join(User, col(User.id) == col(Invite.coach_id))
            .where(redeemable)
        ).first()
        if found is None:
            db.rollback()
            raise NotFound(_UNKNOWN_CODE)
        coach_id, coach_name = found

        # The client's row lock serialises their redemptions, so two invites from one coach
        # redeemed at once cannot leave two live grants (SQLite serialises writers anyway).
        db.execute(select(col(User.id)).where(col(User.id) == client_id).with_for_update())
        if has_live_grant(db, coach_id, client_id):
            db.rollback()
            raise Conflict("This coach already has access to your data; the code was not used.")

        spent = db.execute(
            update(Invite).where(redeemable).values(redeemed_at=now, redeemed_by_id=client_id)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            db.rollback()  # someone else redeemed it in the meantime
            raise NotFound(_UNKNOWN_CODE)
        grant = Grant(coach_id=coach_id, client_id=client_id, created_at=now)
        db.add(grant)
        db.commit()
        return GrantPublic(
            id=grant.id,
            coach=PersonRef(id=coach_id, display_name=coach_name),
            created_at=grant.created_at,
        )


def list_grants(db: Session, client_id: uuid.UUID, limit: int, cursor: str | None) -> GrantList:
    """The client's live grants, oldest first."""
    statement = (
        select(col(Grant.id), col(Grant.created_at), col(User.id), col(User.display_name))
        .join(User, col(User.id) == col(Grant.coach_id))
        .where(col(Grant.client_id) == client_id, _live_grant)
    )
    statement = pagination.after(statement, col(Grant.created_at), col(Grant.id), cursor)
    rows = list(
        db.execute(statement.order_by(col(Grant.created_at), col(Grant.id)).limit(limit + 1))
    )
    items = [
        GrantPublic(
            id=grant_id,
            coach=PersonRef(id=coach_id, display_name=coach_name),
            created_at=created_at,
        )
        for grant_id, created_at, coach_id, coach_name in rows[:limit]
    ]
    positions = [(created_at, grant_id) for grant_id, created_at, _, _ in rows]
    return GrantList(items=items, next_cursor=pagination.next_cursor(positions, limit))


def _end_live_grants(db: Session, *conditions: Any, reason: GrantEndReason, missing: str) -> None:
    """End every live grant matching the conditions and queue one `grant.ended` for each to
    its coach's webhooks, in the same transaction; 404 (`missing`) when there is none.

    The end is one conditional UPDATE (`revoked_at IS NULL`) that returns the rows it changed,
    and only those get an event: of two concurrent ends of one grant, the second changes
    nothing (PostgreSQL re-checks the condition once the first commits; SQLite has one
    writer), so a link ends, and is announced, exactly once.
    """
    with write_transaction(db):
        now = utc_now()
        ended = db.execute(
            update(Grant)
            .where(*conditions, _live_grant)
            .values(revoked_at=now)
            .returning(col(Grant.id), col(Grant.coach_id), col(Grant.client_id))
        ).all()
        if not ended:
            db.rollback()
            raise NotFound(missing)
        for grant_id, coach_id, client_id in ended:
            enqueue_grant_ended(
                db,
                coach_id=coach_id,
                client_id=client_id,
                grant_id=grant_id,
                reason=reason,
                now=now,
            )
        db.commit()


def revoke_grant(db: Session, client_id: uuid.UUID, grant_id: uuid.UUID) -> None:
    """The client ends one grant; 404 unless it is theirs and live."""
    _end_live_grants(
        db,
        col(Grant.id) == grant_id,
        col(Grant.client_id) == client_id,
        reason="revoked_by_client",
        missing="No such grant.",
    )


def drop_client(db: Session, coach_id: uuid.UUID, client_id: uuid.UUID) -> None:
    """The coach ends every live grant from this client; 404 when there is none."""
    _end_live_grants(
        db,
        col(Grant.coach_id) == coach_id,
        col(Grant.client_id) == client_id,
        reason="ended_by_coach",
        missing="No such client.",
    )
