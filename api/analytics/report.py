"""The figures of a report (GET .../report.html, .../report.pdf, a share link): the summary and
the insights of one period, computed by the same functions as /v1/summary and /v1/insights,
plus what only the report shows: whose it is and the newest notes of the period."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlmodel import Session, col

from api.analytics import insights, summaries
from api.analytics.periods import SummaryQuery
from models.base import utc_now
from models.insights import Insights
from models.release_session import ReleaseSession
from models.summary import Summary
from models.user import User

NOTES_SHOWN = 20

_NAME = select(col(User.display_name)).where(col(User.id) == bindparam("person_id"))
# The period's newest sessions with a note (the index on user, started_at serves the range).
_NOTES = (
    select(col(ReleaseSession.started_at), col(ReleaseSession.notes))
    .where(
        col(ReleaseSession.user_id) == bindparam("person_id"),
        col(ReleaseSession.deleted_at).is_(None),
        col(ReleaseSession.started_at) >= bindparam("start"),
        col(ReleaseSession.started_at) <= bindparam("end"),
        col(ReleaseSession.notes).is_not(None),
        col(ReleaseSession.notes) != "",
    )
    .order_by(col(ReleaseSession.started_at).desc(), col(ReleaseSession.id).desc())
    .limit(NOTES_SHOWN)
)


@dataclass(frozen=True)
class Note:
    started_at: datetime
    local_date: date
    text: str


@dataclass(frozen=True)
class ReportFigures:
    display_name: str
    made_at: datetime
    summary: Summary
    insights: Insights
    active_dates: list[date]
    notes: list[Note]


def report_figures(
    db: Session, person_id: uuid.UUID, query: SummaryQuery, now: datetime | None = None
) -> ReportFigures:
    """A person's report over the period of `query` (`from`, `to`, `tz`; weekly buckets, the
    summary's default). 404 (NotFound) when the person is gone."""
    made_at = now or utc_now()
    report_query = SummaryQuery(
        started_from=query.started_from, started_to=query.started_to, tz=query.tz
    )
    with_days = summaries.summarize_with_days(db, person_id, report_query, made_at)
    found = insights.insights(db, person_id, report_query, made_at)
    period = with_days.summary.period
    parameters = {"person_id": person_id, "start": period.from_, "end": period.to}
    connection = db.connection()
    name = connection.execute(_NAME, parameters).scalar() or ""
    rows = connection.execute(_NOTES, parameters).all()
    db.rollback()  # a read: end the transaction (and SQLite's write lock) at once
    zone = ZoneInfo(period.tz)
    notes = [
        Note(started_at, started_at.astimezone(zone).date(), text) for started_at, text in rows
    ]
    return ReportFigures(name, made_at, with_days.summary, found, with_days.active_dates, notes)
