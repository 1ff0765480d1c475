"""Summaries: the SQL half. The database groups and sums; `figures` publishes.

Three grouped queries over indexed ranges: ratings per (region, side, metric, bucket), the
sessions' totals, and the distinct local days with a session (at most one row per day, for
the streaks). No person's rows are loaded into Python.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter
from sqlalchemy import Float, Select, and_, bindparam, case, cast, exists, func, select
from sqlmodel import Session, col

from api.analytics import figures, thresholds
from api.analytics.local_dates import (
    LocalCalendar,
    bucket_expression,
    bucket_parameters,
    bucket_starts,
    day_expression,
    weeks_since_start,
)
from api.analytics.periods import Period, SummaryQuery, person_period
from models.base import utc_now
from models.catalog import METRICS, METRICS_BY_SLUG, REGIONS, SIDES
from models.release_session import Rating, ReleaseSession
from models.summary import (
    Adherence,
    Hydration,
    MetricSummary,
    Summary,
    SummaryPeriod,
)

HYDRATED_ML = 300

_METRIC_LIST = TypeAdapter(list[MetricSummary])
_REGION_ORDER = {region.slug: index for index, region in enumerate(REGIONS)}
_SIDE_ORDER = {side: index for index, side in enumerate(SIDES)}
_METRIC_ORDER = {metric.slug: index for index, metric in enumerate(METRICS)}


# --- SQL: sufficient statistics ----------------------------------------------------------


def _responder(before: Any, after: Any) -> Any:
    """SQL: 1 for a pair whose improvement is positive and reaches the metric's MCID
    (figures.is_responder), compared exactly in tenths."""
    return case((thresholds.responder(col(Rating.metric), before, after), 1), else_=0)


@dataclass(frozen=True)
class MetricKey:
    region: str
    side: str
    metric: str


@lru_cache(maxsize=256)
def _metric_statement(
    segment_count: int, bucket: str, bucket_count: int, by_region: bool, by_metric: bool
) -> Select[Any]:
    """Ratings grouped per (region, side, metric, bucket), built once per shape: every value
    that varies (person, period, offsets, bucket boundaries, filters) is a parameter."""
    started_at = col(Rating.started_at)
    rows = select(
        col(Rating.region),
        col(Rating.side),
        col(Rating.metric),
        col(Rating.before),
        col(Rating.after),
        day_expression(started_at, segment_count).label("day"),
        weeks_since_start(started_at).label("x"),
        _RESPONDER,
    ).where(
        col(Rating.user_id) == bindparam("person_id"),
        started_at >= bindparam("start"),
        started_at <= bindparam("end"),
    )
    if by_region:
        rows = rows.where(col(Rating.region) == bindparam("region"))
    if by_metric:
        rows = rows.where(col(Rating.metric) == bindparam("metric"))
    rated = rows.subquery("rated")
    bucketed = select(
        rated,
        bucket_expression(rated.c.day, bucket, bucket_count).label("bucket"),
    ).subquery("bucketed")
    is_pair = bucketed.c.after.is_not(None)
    x = cast(bucketed.c.x, Float)
    before = cast(bucketed.c.before, Float)
    return select(
        bucketed.c.region,
        bucketed.c.side,
        bucketed.c.metric,
        bucketed.c.bucket,
        func.count(),
        func.sum(case((is_pair, 1), else_=0)),
        func.sum(case((is_pair, before), else_=None)),
        func.sum(cast(bucketed.c.after, Float)),
        func.sum(bucketed.c.responder),
        func.sum(x),
        func.sum(before),
        func.sum(x * x),
        func.sum(x * before),
    ).group_by(bucketed.c.region, bucketed.c.side, bucketed.c.metric, bucketed.c.bucket)


def _metric_statistics(
    db: Session,
    shape: "_Shape",
    parameters: dict[str, Any],
) -> dict[MetricKey, dict[int, tuple[figures.PairStats, figures.SlopeStats]]]:
    statement = _metric_statement(
        shape.segment_count, shape.bucket, shape.bucket_count, shape.by_region, shape.by_metric
    )
    grouped: dict[MetricKey, dict[int, tuple[figures.PairStats, figures.SlopeStats]]] = defaultdict(
        dict
    )
    for row in db.connection().execute(statement, parameters):
        (reg, side, met, bucket, count, pairs, sum_before, sum_after, responders) = row[:9]
        sum_x, sum_y, sum_xx, sum_xy = (float(value or 0) for value in row[9:])
        pair_stats = figures.PairStats(
            ratings=int(count),
            pairs=int(pairs or 0),
            sum_before=float(sum_before or 0),
            sum_after=float(sum_after or 0),
            responders=int(responders or 0),
        )
        slope_stats = figures.SlopeStats(int(count), sum_x, sum_y, sum_xx, sum_xy)
        grouped[MetricKey(reg, side, met)][int(bucket)] = (pair_stats, slope_stats)
    return grouped


def _session_filter(by_region: bool, by_metric: bool) -> list[Any]:
    conditions: list[Any] = [
        col(ReleaseSession.user_id) == bindparam("person_id"),
        col(ReleaseSession.deleted_at).is_(None),
        col(ReleaseSession.started_at) >= bindparam("start"),
        col(ReleaseSession.started_at) <= bindparam("end"),
    ]
    if by_region or by_metric:
        rated = select(col(Rating.session_id)).where(
            col(Rating.session_id) == col(ReleaseSession.id)
        )
        if by_region:
            rated = rated.where(col(Rating.region) == bindparam("region"))
        if by_metric:
            rated = rated.where(col(Rating.metric) == bindparam("metric"))
        conditions.append(exists(rated))
    return conditions


def _count_where(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _session_statistics_columns() -> list[Any]:
    before = col(ReleaseSession.water_before_ml)
    after = col(ReleaseSession.water_after_ml)
    unwell = col(ReleaseSession.felt_unwell_after)
    with_water = and_(before.is_not(None), after.is_not(None))  # type: ignore[union-attr]
    # Exact on one-decimal amounts: 299.9 ml is not hydrated, 300 is.
    both_enough = and_(
        thresholds.at_least(before, HYDRATED_ML), thresholds.at_least(after, HYDRATED_ML)
    )
    hydrated = and_(with_water, both_enough)
    not_hydrated = and_(with_water, ~both_enough)
    felt = unwell.is_not(None)  # type: ignore[union-attr]
    return [
        func.count(),
        _count_where(col(ReleaseSession.complete).is_(True)),
        _count_where(with_water),
        _count_where(hydrated),
        _count_where(and_(hydrated, felt)),
        _count_where(and_(hydrated, unwell.is_(True))),  # type: ignore[union-attr]
        _count_where(and_(not_hydrated, felt)),
        _count_where(and_(not_hydrated, unwell.is_(True))),  # type: ignore[union-attr]
        func.max(col(ReleaseSession.started_at)),
    ]


# Built once: these expressions depend on nothing but the tables and the catalog.
_SESSION_STATISTICS = _session_statistics_columns()
_RESPONDER = _responder(col(Rating.before), col(Rating.after)).label("responder")


@lru_cache(maxsize=8)
def _session_statement(by_region: bool, by_metric: bool) -> Select[Any]:
    return select(*_SESSION_STATISTICS).where(*_session_filter(by_region, by_metric))


@lru_cache(maxsize=128)
def _days_statement(segment_count: int, by_region: bool, by_metric: bool) -> Select[Any]:
    day = day_expression(col(ReleaseSession.started_at), segment_count).label("day")
    days = select(day).where(*_session_filter(by_region, by_metric)).subquery("days")
    return select(days.c.day).distinct()


def _session_statistics(
    db: Session, shape: "_Shape", parameters: dict[str, Any]
) -> tuple[figures.SessionStats, datetime | None]:
    statement = _session_statement(shape.by_region, shape.by_metric)
    row = db.connection().execute(statement, parameters).one()
    counts = [int(value or 0) for value in row[:8]]
    return figures.SessionStats(*counts), row[8]


def _active_days(db: Session, shape: "_Shape", parameters: dict[str, Any]) -> list[int]:
    statement = _days_statement(shape.segment_count, shape.by_region, shape.by_metric)
    return [int(value) for value in db.connection().execute(statement, parameters).scalars()]


@dataclass(frozen=True)
class _Shape:
    """What the statements' SQL depends on; everything else is a parameter."""

    segment_count: int
    bucket: str
    bucket_count: int  # month buckets only (0 otherwise): one CASE branch per month
    by_region: bool
    by_metric: bool


# --- assembly ----------------------------------------------------------------------------


def _metric_summary(
    key: MetricKey,
    by_bucket: dict[int, tuple[figures.PairStats, figures.SlopeStats]],
    starts: list[date],
    period: Period,
) -> dict[str, Any]:
    """One MetricSummary, as the dict that Summary validates (once, for the whole response)."""
    metric = METRICS_BY_SLUG[key.metric]
    pairs_total = figures.PairStats()
    slope_total = figures.SlopeStats()
    for pair_stats, slope_stats in by_bucket.values():
        pairs_total += pair_stats
        slope_total += slope_stats
    published = figures.pair_figures(pairs_total, metric)
    slope = figures.least_squares_slope(slope_total) if slope_total.n >= 3 else None
    series = []
    for index, start in enumerate(starts):
        found = by_bucket.get(index)
        if found is None:
            series.append(
                {
                    "start": start,
                    "sessions": 0,
                    "mean_before": None,
                    "mean_after": None,
                    "mean_change": None,
                }
            )
            continue
        mean_before, mean_after, mean_change = figures.series_means(found[0])
        series.append(
            {
                "start": start,
                "sessions": found[0].ratings,
                "mean_before": mean_before,
                "mean_after": mean_after,
                "mean_change": mean_change,
            }
        )
    return {
        "region": key.region,
        "side": key.side,
        "metric": key.metric,
        "better": metric.better,
        "pairs": published.pairs,
        "mean_before": published.mean_before,
        "mean_after": published.mean_after,
        "mean_change": published.mean_change,
        "mean_improvement": published.mean_improvement,
        "improvement_pct": published.improvement_pct,
        "responder_rate": published.responder_rate,
        "baseline": {
            "slope_per_week": figures.publish(slope, 3),
            "trend": figures.trend(slope, slope_total.n, period.days, metric),
        },
        "series": series,
    }


@dataclass(frozen=True)
class SummaryWithDays:
    """The summary, and the local dates with a session that its adherence counts (the
    report's calendar)."""

    summary: Summary
    active_dates: list[date]


def summarize(
    db: Session, person_id: uuid.UUID, query: SummaryQuery, now: datetime | None = None
) -> Summary:
    """The summary of one person's sessions over a period (see the API's Summaries)."""
    return summarize_with_days(db, person_id, query, now).summary


def summarize_with_days(
    db: Session, person_id: uuid.UUID, query: SummaryQuery, now: datetime | None = None
) -> SummaryWithDays:
    """`summarize`, keeping the active local dates it computed."""
    period = person_period(db, person_id, query, now or utc_now())
    calendar = LocalCalendar(ZoneInfo(period.tz), period.start, period.end)
    starts = bucket_starts(calendar.first_date, calendar.last_date, period.bucket)

    shape = _Shape(
        segment_count=calendar.segment_count,
        bucket=period.bucket,
        bucket_count=len(starts) if period.bucket == "month" else 0,
        by_region=query.region is not None,
        by_metric=query.metric is not None,
    )
    parameters = {
        "person_id": person_id,
        "start": period.start,
        "end": period.end,
        "region": query.region,
        "metric": query.metric,
        **calendar.parameters(),
        **bucket_parameters(calendar.first_date, period.bucket, starts),
    }
    statistics = _metric_statistics(db, shape, parameters)
    session_stats, last_session_at = _session_statistics(db, shape, parameters)
    days = _active_days(db, shape, parameters) if session_stats.sessions else []
    db.rollback()  # a read: end the transaction (and SQLite's write lock) at once

    adherence = figures.adherence_figures(
        session_stats, days, calendar.day_number(period.end), period.days
    )
    hydration = figures.hydration_figures(session_stats)
    ordered = sorted(
        statistics,
        key=lambda key: (
            _REGION_ORDER.get(key.region, 99),
            _SIDE_ORDER.get(key.side, 9),
            _METRIC_ORDER.get(key.metric, 9),
        ),
    )
    summary = Summary(
        period=SummaryPeriod(from_=period.start, to=period.end, tz=period.tz, bucket=period.bucket),  # type: ignore[arg-type]
        adherence=Adherence(
            sessions=adherence.sessions,
            complete_sessions=adherence.complete_sessions,
            active_days=adherence.active_days,
            sessions_per_week=adherence.sessions_per_week,
            current_streak_days=adherence.current_streak_days,
            longest_streak_days=adherence.longest_streak_days,
            last_session_at=last_session_at,
        ),
        hydration=Hydration(
            sessions_with_water=hydration.sessions_with_water,
            hydrated_sessions=hydration.hydrated_sessions,
            hydrated_rate=hydration.hydrated_rate,
            unwell_rate_hydrated=hydration.unwell_rate_hydrated,
            unwell_rate_not_hydrated=hydration.unwell_rate_not_hydrated,
        ),
        metrics=_METRIC_LIST.validate_python(
            [_metric_summary(key, statistics[key], starts, period) for key in ordered]
        ),
    )
    active_dates = [calendar.first_date + timedelta(days=day) for day in sorted(days)]
    return SummaryWithDays(summary, active_dates)
