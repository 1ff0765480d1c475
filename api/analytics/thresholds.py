"""Exact comparisons on stored one-decimal values, in SQL (the same rules as figures.py).

Ratings and water amounts carry at most one decimal but are stored as binary floats, where
6.2 - 4.2 = 1.9999999999999996. Every threshold is compared on integer tenths instead:
CAST(ROUND(x * 10) AS INTEGER), exact and the same on SQLite and PostgreSQL (x * 10 of a
one-decimal value is within a rounding error of an integer, never near a half).
"""

from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, literal_column

from api.analytics.figures import tenths as python_tenths
from models.catalog import METRICS

_LOWER_IS_BETTER = [metric.slug for metric in METRICS if metric.better == "lower"]


def tenths(value: Any) -> Any:
    """SQL: a one-decimal value as an integer number of tenths (figures.tenths)."""
    return cast(func.round(value * _constant(10)), Integer)


def direction(metric: Any) -> Any:
    """SQL: +1 where higher is better, -1 where lower is better."""
    # One branch per lower-is-better metric: an IN list would be an "expanding" parameter,
    # compiled again on every execution.
    return case(*[(metric == slug, _constant(-1)) for slug in _LOWER_IS_BETTER], else_=_constant(1))


def improvement_tenths(metric: Any, before: Any, after: Any) -> Any:
    """SQL: (after - before) in tenths, signed so that positive is better."""
    return direction(metric) * (tenths(after) - tenths(before))


def _constant(value: int) -> Any:
    """An integer written into the SQL (a catalog constant, never input): no parameter."""
    return literal_column(str(int(value)), Integer)


def _per_metric(metric: Any, values: dict[str, int]) -> Any:
    """SQL: the metric's integer constant from `values` (NULL for a metric not listed)."""
    return case(*[(metric == slug, _constant(value)) for slug, value in values.items()], else_=None)


MCID_ABS_TENTHS = {metric.slug: python_tenths(metric.mcid_abs) for metric in METRICS}
MCID_PCT_TENTHS = {
    metric.slug: python_tenths(metric.mcid_pct) for metric in METRICS if metric.mcid_pct is not None
}


def responder(metric: Any, before: Any, after: Any) -> Any:
    """SQL: true for a pair whose improvement is positive and reaches mcid_abs, or mcid_pct %
    of before (figures.is_responder); false (or NULL) for a rating without after."""
    improvement = improvement_tenths(metric, before, after)
    return and_(
        after.is_not(None),
        improvement > _constant(0),
        (improvement >= _per_metric(metric, MCID_ABS_TENTHS))
        | (improvement * _constant(1000) >= _per_metric(metric, MCID_PCT_TENTHS) * tenths(before)),
    )


def worse(metric: Any, before: Any, after: Any) -> Any:
    """SQL: true for a rating whose improvement is at most -mcid_abs (figures.is_worse)."""
    improvement = improvement_tenths(metric, before, after)
    return and_(after.is_not(None), improvement <= -_per_metric(metric, MCID_ABS_TENTHS))


def at_least(value: Any, threshold: float) -> Any:
    """SQL: value >= threshold, exactly on one-decimal values."""
    return tenths(value) >= _constant(python_tenths(threshold))
