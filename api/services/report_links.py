"""Report links: a person shares the report of one period with someone who has no account.

The token is 256 random bits (`secrets.token_urlsafe(32)`), in the link's URL and nowhere
else: the row keeps its SHA-256, so a database leak opens no report. The period is resolved
when the link is made, exactly as the summary resolves one (`to` defaults to that moment,
`from` to 90 days before, the time zone to the account's; the same 422s), and kept; the
figures are read when the link is opened, so the data stays live. Revoking deletes the row;
an expired row answers 404 like an unknown one; the person's expired rows are deleted
when they make a new link, and all of them with the account.
"""

import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlmodel import Session

from api.analytics.periods import SummaryQuery, person_period
from api.db import write_transaction
from api.errors import NotFound, Unauthorized, Unprocessable
from api.security import hash_secret
from api.services import pagination
from models.base import utc_now
from models.report_link import (
    ReportLink,
    ReportLinkCreate,
    ReportLinkCreated,
    ReportLinkList,
    ReportLinkPeriod,
    ReportLinkPublic,
)

# What `secrets.token_urlsafe` produces, with room to spare: anything else is refused as
# unknown before it is hashed or looked up.
MAX_TOKEN_LENGTH = 100
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_TOKEN_LENGTH}}}")
UNKNOWN_LINK = (
    "This report link is unknown, revoked or expired. Ask the person who shared it for a new one."
)
_TABLE = ReportLink.__table__  # type: ignore[attr-defined]


def _period(link: ReportLink) -> ReportLinkPeriod:
    return ReportLinkPeriod(from_=link.period_from, to=link.period_to, tz=link.tz)


def _public(link: ReportLink) -> ReportLinkPublic:
    return ReportLinkPublic(
        id=link.id, period=_period(link), expires_at=link.expires_at, created_at=link.created_at
    )


def create_link(
    db: Session,
    user_id: uuid.UUID,
    data: ReportLinkCreate,
    base_url: str,
    now: datetime | None = None,
) -> ReportLinkCreated:
    """A new link to the person's report of the period `data` names, resolved now."""
    now = now or utc_now()
    query = SummaryQuery(started_from=data.period_from, started_to=data.period_to, tz=data.tz)
    try:
        period = person_period(db, user_id, query, now)  # the summary's 422s
    except NotFound:  # erased since the credential was checked
        raise Unauthorized() from None
    except Unprocessable as invalid:  # the same fields, in the body rather than the query
        errors = [{**error, "loc": ["body", *error["loc"][1:]]} for error in invalid.errors]
        raise Unprocessable(invalid.detail, errors) from None
    token = secrets.token_urlsafe(32)
    link = ReportLink(
        user_id=user_id,
        token_hash=hash_secret(token),
        period_from=period.start,
        period_to=period.end,
        tz=period.tz,
        expires_at=now + timedelta(days=data.expires_in_days),
        created_at=now,
    )
    with write_transaction(db) as connection:
        # Housekeeping: the person's expired links go, they can never answer again.
        connection.execute(
            delete(_TABLE).where(_TABLE.c.user_id == user_id, _TABLE.c.expires_at <= now)
        )
        db.add(link)
        db.commit()
    return ReportLinkCreated(
        id=link.id,
        url=f"{base_url}/r/{token}",
        period=_period(link),
        expires_at=link.expires_at,
        created_at=link.created_at,
    )


def list_links(db: Session, user_id: uuid.UUID, limit: int, cursor: str | None) -> ReportLinkList:
    """The person's links that still work, newest first (never their URLs)."""
    statement = select(ReportLink).where(
        _TABLE.c.user_id == user_id, _TABLE.c.expires_at > utc_now()
    )
    statement = pagination.after(
        statement, _TABLE.c.created_at, _TABLE.c.id, cursor, descending=True
    )
    ordered = statement.order_by(_TABLE.c.created_at.desc(), _TABLE.c.id.desc())
    rows = list(db.scalars(ordered.limit(limit + 1)))
    return ReportLinkList(
        items=[_public(row) for row in rows[:limit]],
        next_cursor=pagination.next_cursor([(row.created_at, row.id) for row in rows], limit),
    )


def revoke_link(db: Session, user_id: uuid.UUID, link_id: uuid.UUID) -> None:
    """Delete the link (404 for another person's or an unknown one): it answers 404 at once."""
    with write_transaction(db) as connection:
        deleted = connection.execute(
            delete(_TABLE).where(_TABLE.c.id == link_id, _TABLE.c.user_id == user_id)
        )
        if deleted.rowcount != 1:
            raise NotFound("No such report link.")
        db.commit()


def resolve_link(db: Session, token: str) -> ReportLink:
    """The live link of `token`; NotFound for an unknown, revoked or expired one."""
    if not _TOKEN.fullmatch(token):
        raise NotFound(UNKNOWN_LINK)
    link = db.scalars(
        select(ReportLink).where(
            _TABLE.c.token_hash == hash_secret(token), _TABLE.c.expires_at > utc_now()
        )
    ).first()
    if link is None:
        raise NotFound(UNKNOWN_LINK)
    return link


def link_query(link: ReportLink) -> SummaryQuery:
    """The report query of a link: its fixed period and time zone."""
    return SummaryQuery(started_from=link.period_from, started_to=link.period_to, tz=link.tz)
