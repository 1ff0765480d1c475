"""Insights: the SQL half. The database orders, pairs, groups and sums; insight_figures publishes.

Every statement reads one person's ratings over the period through the (user_id, started_at)
index of `rating` (ix_rating_user_started); what works joins `release_session` by id, bounded
by the same person and period (ix_release_session_user_started). Values are compared and
summed in integer tenths (CAST(ROUND(value * 10) AS INTEGER): ratings and water amounts carry
at most one decimal), and durations and gaps in integer microseconds, so every threshold is
exact on SQLite and PostgreSQL alike. Four statements:

- carry-over: LAG over each (region, side, metric) ordered by started_at then session id gives
  consecutive ratings; the intervals are summed, and their median gap is computed in SQL: the
  middle one or two gaps by ROW_NUMBER and COUNT over the same window (both databases have
  them, so no gap is loaded into Python);
- asymmetry: the left and right rating of each session paired (grouped per session, region and
  metric), differences summed per (region, metric) with the sums of a least-squares line;
- what works: pairs with their session's tool, hydration and duration levels, counted and
  summed (improvement and its square) per combination of the three; the pure layer adds the
  groups up per factor and level, and "rest" = factor total - level (exact, in integers);
- safety: the worse ratings, newest first, at most 100, and their distinct sessions counted.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Float, Select, and_, bindparam, case, cast, func, or_, select
from sqlmodel import Session, col

from api.analytics import insight_figures
from api.analytics.figures import SlopeStats
from api.analytics.local_dates import EpochMicroseconds, weeks_since_start
from api.analytics.periods import SummaryQuery, person_period
from api.analytics.summaries import HYDRATED_ML
from api.analytics.thresholds import direction, improvement_tenths, tenths, worse
from models.base import utc_now
from models.catalog import METRICS, METRICS_BY_SLUG, REGIONS, SIDES, TOOLS
from models.insights import Insights
from models.release_session import Rating, ReleaseSession

SAFETY_ITEMS = 100
TEN_MINUTES_US = 10 * 60 * 1_000_000
DURATION_LEVELS = ("under_10_min", "10_to_20_min", "20_min_or_more")  # by whole 10 minutes

_LOWER_IS_BETTER = [metric.slug for metric in METRICS if metric.better == "lower"]
_REGION_ORDER = {region.slug: index for index, region in enumerate(REGIONS)}
_SIDE_ORDER = {side: index for index, side in enumerate(SIDES)}
_METRIC_ORDER = {metric.slug: index for index, metric in enumerate(METRICS)}
FACTOR_LEVELS: dict[str, tuple[str, ...]] = {
    "tool": TOOLS,
    "hydration": ("hydrated", "not_hydrated"),
    "duration": DURATION_LEVELS,
}


# --- SQL: sufficient statistics ----------------------------------------------------------


def _rating_filter(by_region: bool, by_metric: bool) -> list[Any]:
    conditions = [
        col(Rating.user_id) == bindparam("person_id"),
        col(Rating.started_at) >= bindparam("start"),
        col(Rating.started_at) <= bindparam("end"),
    ]
    if by_region:
        conditions.append(col(Rating.region) == bindparam("region"))
    if by_metric:
        conditions.append(col(Rating.metric) == bindparam("metric"))
    return conditions


@lru_cache(maxsize=8)
def _carry_over_statement(by_region: bool, by_metric: bool) -> Select[Any]:
    # The values first, computed once per rating; the windows then only read columns.
    values = (
        select(
            col(Rating.region),
            col(Rating.side),
            col(Rating.metric),
            col(Rating.started_at),
            col(Rating.session_id),
            direction(col(Rating.metric)).label("direction"),
            tenths(col(Rating.before)).label("before"),
            tenths(col(Rating.after)).label("after"),
            EpochMicroseconds(col(Rating.started_at)).label("instant"),
        )
        .where(*_rating_filter(by_region, by_metric))
        .subquery("rating_values")
    )
    key = [values.c.region, values.c.side, values.c.metric]
    order = [values.c.started_at, values.c.session_id]
    rated = select(
        *key,
        values.c.direction,
        values.c.before,
        values.c.instant,
        func.lag(values.c.before).over(partition_by=key, order_by=order).label("prev_before"),
        func.lag(values.c.after).over(partition_by=key, order_by=order).label("prev_after"),
        func.lag(values.c.instant).over(partition_by=key, order_by=order).label("prev_instant"),
    ).subquery("rated")
    intervals = (
        select(
            rated.c.region,
            rated.c.side,
            rated.c.metric,
            (rated.c.direction * (rated.c.prev_after - rated.c.prev_before)).label("relief"),
            (-rated.c.direction * (rated.c.before - rated.c.prev_after)).label("rebound"),
            (rated.c.instant - rated.c.prev_instant).label("gap"),
        )
        # prev is a pair (LAG is also null for the first rating: no interval there)
        .where(rated.c.prev_after.is_not(None))
        .subquery("intervals")
    )
    interval_key = [intervals.c.region, intervals.c.side, intervals.c.metric]
    ranked = select(
        intervals,
        func.row_number().over(partition_by=interval_key, order_by=intervals.c.gap).label("rank"),
        # The same window (partition and order) as the rank, over the whole partition: one
        # sort for both.
        func.count()
        .over(partition_by=interval_key, order_by=intervals.c.gap, rows=(None, None))
        .label("total"),
    ).subquery("ranked")
    # The median's one or two middle gaps: ranks (total + 1) / 2 and (total + 2) / 2, in
    # integer division (equal for an odd total).
    middle = or_(
        ranked.c.rank == (ranked.c.total + 1) // 2, ranked.c.rank == (ranked.c.total + 2) // 2
    )
    return select(
        ranked.c.region,
        ranked.c.side,
        ranked.c.metric,
        func.count(),
        func.sum(ranked.c.relief),
        func.sum(ranked.c.rebound),
        func.sum(case((middle, ranked.c.gap), else_=0)),
        func.sum(case((middle, 1), else_=0)),
    ).group_by(ranked.c.region, ranked.c.side, ranked.c.metric)


@lru_cache(maxsize=8)
def _asymmetry_statement(by_region: bool, by_metric: bool) -> Select[Any]:
    # Left and right are paired per session by grouping the session's ratings (a pivot): one
    # scan of the person's indexed range. A self-join of the two sides was planned as a range
    # scan per left rating by SQLite, or as a hash of everyone's right ratings by PostgreSQL.
    side = col(Rating.side)
    is_left, is_right = side == "left", side == "right"
    before, after = tenths(col(Rating.before)), tenths(col(Rating.after))
    sessions = (
        select(
            col(Rating.region),
            col(Rating.metric),
            col(Rating.started_at),
            func.max(case((is_left, before))).label("left_before"),
            func.max(case((is_right, before))).label("right_before"),
            func.max(case((is_left, after))).label("left_after"),
            func.max(case((is_right, after))).label("right_after"),
        )
        .where(*_rating_filter(by_region, by_metric), or_(is_left, is_right))
        .group_by(
            col(Rating.session_id), col(Rating.started_at), col(Rating.region), col(Rating.metric)
        )
        # `before` is never null: both sides were rated in this session
        .having(
            and_(
                func.max(case((is_left, before))).is_not(None),
                func.max(case((is_right, before))).is_not(None),
            )
        )
        .subquery("sessions")
    )
    both_after = and_(sessions.c.left_after.is_not(None), sessions.c.right_after.is_not(None))
    diff_before = sessions.c.left_before - sessions.c.right_before
    y = cast(diff_before, Float) / 10
    x = cast(weeks_since_start(sessions.c.started_at), Float)
    return select(
        sessions.c.region,
        sessions.c.metric,
        func.count(),
        func.sum(diff_before),
        func.sum(case((both_after, 1), else_=0)),
        func.sum(case((both_after, sessions.c.left_after - sessions.c.right_after), else_=0)),
        func.sum(x),
        func.sum(y),
        func.sum(x * x),
        func.sum(x * y),
    ).group_by(sessions.c.region, sessions.c.metric)


def _levels() -> tuple[Any, Any]:
    water_before = col(ReleaseSession.water_before_ml)
    water_after = col(ReleaseSession.water_after_ml)
    with_water = and_(water_before.is_not(None), water_after.is_not(None))  # type: ignore[union-attr]
    hydrated_tenths = HYDRATED_ML * 10
    hydration = case(
        (
            and_(
                with_water,
                tenths(water_before) >= hydrated_tenths,
                tenths(water_after) >= hydrated_tenths,
            ),
            "hydrated",
        ),
        (with_water, "not_hydrated"),
        else_=None,
    )
    ended_at = col(ReleaseSession.ended_at)
    # Whole 10-minute steps of the exact duration (never negative: integer division floors on
    # both databases): 0 = under 10 min, 1 = 10 to < 20, 2 or more = 20 min or more. One
    # subtraction per pair instead of one per CASE branch.
    duration_us = EpochMicroseconds(ended_at) - EpochMicroseconds(col(ReleaseSession.started_at))
    duration = case(
        (ended_at.is_(None), None),  # type: ignore[union-attr]
        else_=duration_us // TEN_MINUTES_US,
    )
    return hydration, duration


@lru_cache(maxsize=8)
def _what_works_statement(by_region: bool, by_metric: bool) -> Select[Any]:
    metric = col(Rating.metric)
    improvement = improvement_tenths(metric, col(Rating.before), col(Rating.after))
    hydration, duration = _levels()
    pairs = (
        select(
            col(Rating.region),
            col(Rating.side),
            metric,
            col(ReleaseSession.tool).label("tool"),
            hydration.label("hydration"),
            duration.label("duration"),
            improvement.label("improvement"),
        )
        .select_from(Rating)
        .join(
            ReleaseSession,
            and_(
                col(ReleaseSession.id) == col(Rating.session_id),
                # Redundant for the result, but it bounds the sessions by the person's indexed
                # range (ix_release_session_user_started): PostgreSQL would otherwise hash them
                # all.
                col(ReleaseSession.user_id) == bindparam("person_id"),
                col(ReleaseSession.started_at) >= bindparam("start"),
                col(ReleaseSession.started_at) <= bindparam("end"),
            ),
        )
        .where(*_rating_filter(by_region, by_metric), col(Rating.after).is_not(None))
        .subquery("pairs")
    )
    groups = [
        pairs.c.region,
        pairs.c.side,
        pairs.c.metric,
        pairs.c.tool,
        pairs.c.hydration,
        pairs.c.duration,
    ]
    return select(
        *groups,
        func.count(),
        func.sum(pairs.c.improvement),
        func.sum(pairs.c.improvement * pairs.c.improvement),
    ).group_by(*groups)


def _worse() -> Any:
    return worse(col(Rating.metric), col(Rating.before), col(Rating.after))


@lru_cache(maxsize=8)
def _safety_items_statement(by_region: bool, by_metric: bool) -> Select[Any]:
    return (
        select(
            col(Rating.session_id),
            col(Rating.started_at),
            col(Rating.region),
            col(Rating.side),
            col(Rating.metric),
            col(Rating.before),
            col(Rating.after),
            (-improvement_tenths(col(Rating.metric), col(Rating.before), col(Rating.after))).label(
                "worsening"
            ),
        )
        .where(*_rating_filter(by_region, by_metric), _worse())
        .order_by(
            col(Rating.started_at).desc(), col(Rating.session_id).desc(), col(Rating.position)
        )
        .limit(SAFETY_ITEMS)
    )


@lru_cache(maxsize=8)
def _flagged_sessions_statement(by_region: bool, by_metric: bool) -> Select[Any]:
    return select(func.count(func.distinct(col(Rating.session_id)))).where(
        *_rating_filter(by_region, by_metric), _worse()
    )


@dataclass(frozen=True)
class MetricKey:
    region: str
    side: str
    metric: str


def carry_over_statistics(
    db: Session, parameters: dict[str, Any], by_region: bool, by_metric: bool
) -> dict[MetricKey, insight_figures.CarryOverStats]:
    statement = _carry_over_statement(by_region, by_metric)
    return {
        MetricKey(region, side, metric): insight_figures.CarryOverStats(
            int(count), int(relief), int(rebound), int(gap_sum), int(gap_count)
        )
        for region, side, metric, count, relief, rebound, gap_sum, gap_count in db.connection()
        .execute(statement, parameters)
        .all()
    }


def asymmetry_statistics(
    db: Session, parameters: dict[str, Any], by_region: bool, by_metric: bool
) -> dict[tuple[str, str], insight_figures.AsymmetryStats]:
    statement = _asymmetry_statement(by_region, by_metric)
    result = {}
    for row in db.connection().execute(statement, parameters):
        region, metric, count, sum_before, with_after, sum_after = row[:6]
        sum_x, sum_y, sum_xx, sum_xy = (float(value or 0) for value in row[6:])
        result[(region, metric)] = insight_figures.AsymmetryStats(
            sessions=int(count),
            sum_diff_before_tenths=int(sum_before),
            sessions_with_after=int(with_after),
            sum_diff_after_tenths=int(sum_after),
            slope=SlopeStats(int(count), sum_x, sum_y, sum_xx, sum_xy),
        )
    return result


def what_works_statistics(
    db: Session, parameters: dict[str, Any], by_region: bool, by_metric: bool
) -> dict[MetricKey, dict[str, dict[str, insight_figures.LevelStats]]]:
    """Per metric, per factor, per level: the pairs' improvement statistics."""
    statement = _what_works_statement(by_region, by_metric)
    result: dict[MetricKey, dict[str, dict[str, insight_figures.LevelStats]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(insight_figures.LevelStats))
    )
    for row in db.connection().execute(statement, parameters):
        region, side, metric, tool, hydration, duration, count, total, squares = row
        stats = insight_figures.LevelStats(int(count), int(total), int(squares))
        by_factor = result[MetricKey(region, side, metric)]
        duration_level = None if duration is None else DURATION_LEVELS[min(int(duration), 2)]
        for factor, level in (
            ("tool", tool),
            ("hydration", hydration),
            ("duration", duration_level),
        ):
            if level is not None:
                by_factor[factor][level] += stats
    return result


# --- assembly ----------------------------------------------------------------------------


def _metric_order(key: MetricKey) -> tuple[int, int, int]:
    return (
        _REGION_ORDER.get(key.region, 99),
        _SIDE_ORDER.get(key.side, 9),
        _METRIC_ORDER.get(key.metric, 9),
    )


def _what_works(
    statistics: dict[MetricKey, dict[str, dict[str, insight_figures.LevelStats]]],
) -> list[dict[str, Any]]:
    entries = []
    for key in sorted(statistics, key=_metric_order):
        metric = METRICS_BY_SLUG[key.metric]
        for factor, levels in FACTOR_LEVELS.items():
            by_level = statistics[key].get(factor, {})
            total = sum(by_level.values(), insight_figures.LevelStats())
            for level in levels:
                stats = by_level.get(level)
                if stats is None:
                    continue
                compared = insight_figures.comparison_figures(stats, total - stats)
                if compared is None:
                    continue
                entries.append(
                    {
                        "region": key.region,
                        "side": key.side,
                        "metric": key.metric,
                        "better": metric.better,
                        "factor": factor,
                        "level": level,
                        "n": compared.n,
                        "mean_improvement": compared.mean_improvement,
                        "rest_n": compared.rest_n,
                        "rest_mean_improvement": compared.rest_mean_improvement,
                        "difference": compared.difference,
                        "ci95_low": compared.ci95_low,
                        "ci95_high": compared.ci95_high,
                        "verdict": compared.verdict,
                    }
                )
    return entries


def insights(
    db: Session, person_id: uuid.UUID, query: SummaryQuery, now: datetime | None = None
) -> Insights:
    """The insights of one person's sessions over a period (see the API's Insights)."""
    period = person_period(db, person_id, query, now or utc_now())
    by_region, by_metric = query.region is not None, query.metric is not None
    parameters = {
        "person_id": person_id,
        "start": period.start,
        "end": period.end,
        "region": query.region,
        "metric": query.metric,
        "start_epoch": int(period.start.timestamp()),
    }
    carry_over = carry_over_statistics(db, parameters, by_region, by_metric)
    asymmetry = asymmetry_statistics(db, parameters, by_region, by_metric)
    what_works = what_works_statistics(db, parameters, by_region, by_metric)
    connection = db.connection()
    items = connection.execute(_safety_items_statement(by_region, by_metric), parameters).all()
    flagged = connection.execute(
        _flagged_sessions_statement(by_region, by_metric), parameters
    ).scalar()
    db.rollback()  # a read: end the transaction (and SQLite's write lock) at once

    carry_over_entries = []
    for key in sorted(carry_over, key=_metric_order):
        figures = insight_figures.carry_over_figures(carry_over[key])
        carry_over_entries.append(
            {
                "region": key.region,
                "side": key.side,
                "metric": key.metric,
                "better": METRICS_BY_SLUG[key.metric].better,
                "intervals": figures.intervals,
                "mean_relief": figures.mean_relief,
                "mean_rebound": figures.mean_rebound,
                "retention_pct": figures.retention_pct,
                "median_gap_days": figures.median_gap_days,
            }
        )
    asymmetry_entries = []
    for region, metric_slug in sorted(
        asymmetry, key=lambda pair: (_REGION_ORDER.get(pair[0], 99), _METRIC_ORDER.get(pair[1], 9))
    ):
        metric = METRICS_BY_SLUG[metric_slug]
        published = insight_figures.asymmetry_figures(asymmetry[(region, metric_slug)], metric)
        asymmetry_entries.append(
            {
                "region": region,
                "metric": metric_slug,
                "better": metric.better,
                "sessions": published.sessions,
                "mean_diff_before": published.mean_diff_before,
                "mean_diff_after": published.mean_diff_after,
                "slope_per_week": published.slope_per_week,
                "worse_side": published.worse_side,
            }
        )
    return Insights.model_validate(
        {
            "period": {"from": period.start, "to": period.end, "tz": period.tz},
            "carry_over": carry_over_entries,
            "asymmetry": asymmetry_entries,
            "what_works": _what_works(what_works),
            "safety": {
                "flagged_sessions": int(flagged or 0),
                "items": [
                    {
                        "session_id": session_id,
                        "started_at": started_at,
                        "region": region,
                        "side": side,
                        "metric": metric,
                        "before": before,
                        "after": after,
                        "worsening": worsening / 10,
                    }
                    for (
                        session_id,
                        started_at,
                        region,
                        side,
                        metric,
                        before,
                        after,
                        worsening,
                    ) in items
                ],
            },
        }
    )
