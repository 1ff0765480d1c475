"""Coaches and clients: invites, grants, revocation and the coach's roster."""

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ScalarSelect, and_, func, select, update
from sqlmodel import Session, col

from api.db import write_transaction
from api.errors import Conflict, NotFound
from api.security import hash_secret
from api.services import pagination
from api.services import sessions as session_service
from api.services.access import Caller, has_live_grant, readable_person
from api.services.roster import roster_pain as pain_statistics
from models.base import utc_now
from models.coaching import (
    Grant,
    GrantList,
    GrantPublic,
    Invite,
    InvitePublic,
    Roster,
    RosterEntry,
    RosterFlag,
    RosterPain,
)
from models.release_session import ReleaseSession, SessionList, SessionPublic
from models.user import PersonRef, User

INVITE_LIFETIME = timedelta(days=7)
# 16 random bytes = 128 bits: far beyond guessing, even with many live invites.
INVITE_CODE_BYTES = 16
_UNKNOWN_CODE = "No such invite code, or it was already used or has expired."

_live_grant = col(Grant.revoked_at).is_(None)


# --- invites and grants ------------------------------------------------------------------


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


def _revoke_live_grants(db: Session, *conditions: Any, missing: str) -> None:
    """End every live grant matching the conditions; 404 (`missing`) when there is none."""
    with write_transaction(db):
        revoked = db.execute(
            update(Grant).where(*conditions, _live_grant).values(revoked_at=utc_now())
        )
        if revoked.rowcount == 0:  # type: ignore[attr-defined]
            db.rollback()
            raise NotFound(missing)
        db.commit()


def revoke_grant(db: Session, client_id: uuid.UUID, grant_id: uuid.UUID) -> None:
    """The client ends one grant; 404 unless it is theirs and live."""
    _revoke_live_grants(
        db, col(Grant.id) == grant_id, col(Grant.client_id) == client_id, missing="No such grant."
    )


def drop_client(db: Session, coach_id: uuid.UUID, client_id: uuid.UUID) -> None:
    """The coach ends every live grant from this client; 404 when there is none."""
    _revoke_live_grants(
        db,
        col(Grant.coach_id) == coach_id,
        col(Grant.client_id) == client_id,
        missing="No such client.",
    )


# --- the coach's read-only view of a client ----------------------------------------------


def list_client_sessions(
    db: Session,
    caller: Caller,
    client_id: uuid.UUID,
    filters: session_service.SessionFilters,
    limit: int,
    cursor: str | None,
) -> SessionList:
    """A client's sessions as the client lists them; 404 without a live grant."""
    owner_id = readable_person(db, caller, client_id, "sessions:read", as_coach=True)
    return session_service.list_sessions(db, owner_id, filters, limit, cursor)


def get_client_session(
    db: Session, caller: Caller, client_id: uuid.UUID, session_id: uuid.UUID
) -> SessionPublic:
    """One of a client's sessions; 404 without a live grant or when it is not theirs."""
    owner_id = readable_person(db, caller, client_id, "sessions:read", as_coach=True)
    return session_service.get_session(db, owner_id, session_id)


# --- the roster --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientPain:
    """One client's pain block and the pain flags it raises."""

    pain: RosterPain
    flags: list[RosterFlag] = field(default_factory=list)


def roster_pain(
    db: Session, client_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, ClientPain]:
    """The 28-day pain block and pain flags (`pain_worsening`, `pain_after_higher`) per client,
    from one grouped query for the whole roster (see api/services/roster.py)."""
    return {
        client_id: ClientPain(
            pain=RosterPain(
                mean_before_28d=statistics.mean_before_28d,
                mean_change_28d=statistics.mean_change_28d,
                trend=statistics.trend,  # type: ignore[arg-type]
            ),
            flags=statistics.flags,  # type: ignore[arg-type]
        )
        for client_id, statistics in pain_statistics(db, client_ids, now).items()
    }


def roster(db: Session, coach_id: uuid.UUID) -> Roster:
    """The coach's clients with a live grant, by display name then id.

    One query for the whole roster: the live grants per client, each with three correlated
    lookups on the (user_id, started_at) index (the latest session, and the counts over 7
    and 28 days). Driven by the grants, the plan is the same with or without planner
    statistics; a grouped join over every client's sessions was not (PostgreSQL re-ran it
    once per client: 200 ms for 200 clients before ANALYZE).
    """
    now = utc_now()
    week_ago, four_weeks_ago = now - timedelta(days=7), now - timedelta(days=28)
    granted = (
        select(col(Grant.client_id), func.min(col(Grant.created_at)).label("granted_at"))
        .where(col(Grant.coach_id) == coach_id, _live_grant)
        .group_by(col(Grant.client_id))
        .subquery()
    )
    started = col(ReleaseSession.started_at)
    live_of_client = and_(
        col(ReleaseSession.user_id) == granted.c.client_id,
        col(ReleaseSession.deleted_at).is_(None),
    )

    def counted_since(since: datetime) -> ScalarSelect[int]:
        return (
            select(func.count())
            .select_from(ReleaseSession)
            .where(live_of_client, started >= since)
            .scalar_subquery()
        )

    latest = (
        select(started).where(live_of_client).order_by(started.desc()).limit(1).scalar_subquery()
    )
    rows = db.execute(
        select(
            col(User.id),
            col(User.display_name),
            granted.c.granted_at,
            latest,
            counted_since(week_ago),
            counted_since(four_weeks_ago),
        ).join(granted, granted.c.client_id == col(User.id))
    ).all()
    pains = roster_pain(db, [row[0] for row in rows], now)
    entries = []
    for client_id, name, granted_at, last_session_at, sessions_7d, sessions_28d in rows:
        flags: list[RosterFlag] = ["inactive_7d"] if sessions_7d == 0 else []
        pain = pains[client_id]
        entries.append(
            RosterEntry(
                client=PersonRef(id=client_id, display_name=name),
                granted_at=granted_at,
                last_session_at=last_session_at,
                sessions_7d=int(sessions_7d),
                sessions_28d=int(sessions_28d),
                pain=pain.pain,
                flags=flags + pain.flags,
            )
        )
    # Sorted here, not in SQL: collations differ between SQLite and PostgreSQL.
    entries.sort(
        key=lambda entry: (
            entry.client.display_name.casefold(),
            entry.client.display_name,
            entry.client.id,
        )
    )
    return Roster(items=entries)
