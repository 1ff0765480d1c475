"""A coach's roster: each client's activity and pain figures, for every client at once."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Float, ScalarSelect, and_, case, cast, exists, func, select
from sqlmodel import Session, col

from api.analytics import figures, thresholds
from api.analytics.local_dates import SECONDS_PER_WEEK, EpochSeconds
from models.base import utc_now
from models.catalog import METRICS_BY_SLUG
from models.coaching import Grant, Roster, RosterEntry, RosterFlag, RosterPain
from models.release_session import Rating, ReleaseSession
from models.user import PersonRef, User

PAIN = METRICS_BY_SLUG["pain"]
PAIN_WINDOW = timedelta(days=28)
RECENT_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class PainStatistics:
    """A client's pain over the last 28 days (every region and side pooled)."""

    mean_before_28d: float | None  # over pairs, like a summary's mean_before
    mean_change_28d: float | None
    trend: str | None  # the summaries' trend rule over the 28 days
    pain_worsening: bool
    pain_after_higher: bool  # a session in the last 7 days ended with more pain than it began

    @property
    def flags(self) -> list[str]:
        return [
            flag
            for flag, raised in (
                ("pain_worsening", self.pain_worsening),
                ("pain_after_higher", self.pain_after_higher),
            )
            if raised
        ]


NO_PAIN_DATA = PainStatistics(None, None, None, pain_worsening=False, pain_after_higher=False)


def roster_pain(
    db: Session, client_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, PainStatistics]:
    """Pain figures per client; a client without pain ratings gets NO_PAIN_DATA."""
    result = dict.fromkeys(client_ids, NO_PAIN_DATA)
    if not client_ids:
        return result
    start = now - PAIN_WINDOW
    is_pair = col(Rating.after).is_not(None)
    x = cast(
        (EpochSeconds(col(Rating.started_at)) - int(start.timestamp())) / float(SECONDS_PER_WEEK),
        Float,
    )
    before = col(Rating.before)
    higher_after = and_(
        col(Rating.started_at) >= now - RECENT_WINDOW,
        is_pair,
        thresholds.tenths(col(Rating.after)) > thresholds.tenths(col(Rating.before)),
    )
    statement = (
        select(
            col(Rating.user_id),
            func.count(),
            func.sum(case((is_pair, 1), else_=0)),
            func.sum(case((is_pair, before), else_=None)),
            func.sum(col(Rating.after)),
            func.sum(x),
            func.sum(before),
            func.sum(x * x),
            func.sum(x * before),
            func.sum(case((higher_after, 1), else_=0)),
        )
        .where(
            col(Rating.user_id).in_(client_ids),
            col(Rating.metric) == PAIN.slug,
            col(Rating.started_at) >= start,
            col(Rating.started_at) <= now,
        )
        .group_by(col(Rating.user_id))
    )
    for row in db.execute(statement):
        client_id, count, pairs, sum_before, sum_after = row[:5]
        sum_x, sum_y, sum_xx, sum_xy = (float(value or 0) for value in row[5:9])
        pair_figures = figures.pair_figures(
            figures.PairStats(
                ratings=int(count),
                pairs=int(pairs or 0),
                sum_before=float(sum_before or 0),
                sum_after=float(sum_after or 0),
            ),
            PAIN,
        )
        slope_stats = figures.SlopeStats(int(count), sum_x, sum_y, sum_xx, sum_xy)
        slope = figures.least_squares_slope(slope_stats)
        trend = figures.trend(slope, slope_stats.n, PAIN_WINDOW.total_seconds() / 86_400, PAIN)
        result[client_id] = PainStatistics(
            mean_before_28d=pair_figures.mean_before,
            mean_change_28d=pair_figures.mean_change,
            trend=trend,
            pain_worsening=trend == "worsening",
            pain_after_higher=bool(row[9]),
        )
    return result


def roster(db: Session, coach_id: uuid.UUID) -> Roster:
    """The coach's clients with a live grant, by display name then id.

    One query for the whole roster: the live grants per client, each with four correlated
    lookups on the (user_id, started_at) indexes (the latest session, the counts over 7
    and 28 days, and whether a rating of the last 7 days is worse). Driven by the grants,
    the plan is the same with or without planner statistics; a grouped join over every
    client's sessions was not (PostgreSQL re-ran it once per client before ANALYZE).
    """
    now = utc_now()
    week_ago, four_weeks_ago = now - timedelta(days=7), now - timedelta(days=28)
    granted = (
        select(col(Grant.client_id), func.min(col(Grant.created_at)).label("granted_at"))
        .where(col(Grant.coach_id) == coach_id, col(Grant.revoked_at).is_(None))
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
    # A session in the last 7 days with a worse rating (a deleted session has no ratings).
    rated = col(Rating.started_at)
    flagged_7d = exists(
        select(col(Rating.session_id)).where(
            col(Rating.user_id) == granted.c.client_id,
            rated >= week_ago,
            thresholds.worse(col(Rating.metric), col(Rating.before), col(Rating.after)),
        )
    )
    rows = db.execute(
        select(
            col(User.id),
            col(User.display_name),
            granted.c.granted_at,
            latest,
            counted_since(week_ago),
            counted_since(four_weeks_ago),
            flagged_7d,
        ).join(granted, granted.c.client_id == col(User.id))
    ).all()
    pains = roster_pain(db, [row[0] for row in rows], now)
    entries = []
    for client_id, name, granted_at, last_session_at, sessions_7d, sessions_28d, flagged in rows:
        flags: list[RosterFlag] = ["inactive_7d"] if sessions_7d == 0 else []
        pain = pains[client_id]
        entries.append(
            RosterEntry(
                client=PersonRef(id=client_id, display_name=name),
                granted_at=granted_at,
                last_session_at=last_session_at,
                sessions_7d=int(sessions_7d),
                sessions_28d=int(sessions_28d),
                pain=RosterPain(
                    mean_before_28d=pain.mean_before_28d,
                    mean_change_28d=pain.mean_change_28d,
                    trend=pain.trend,  # type: ignore[arg-type]
                ),
                flags=flags + pain.flags + (["flagged_7d"] if flagged else []),  # type: ignore[operator]
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
