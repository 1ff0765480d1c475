"""The pure half of summaries: sufficient statistics in, published figures out.

The database returns counts and sums per group (see summaries.py and roster.py); these
functions turn them into means, rates, slopes and trends, and round only what is published.
No I/O here, so every rule of the contract is unit-tested with plain tables of numbers.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from models.catalog import METRICS_BY_SLUG, Metric

# Fitted values (a trend's slope times the period) are no one-decimal values: comparing them
# with a threshold allows this much slack. Stored values are compared exactly, in tenths.
EPSILON = 1e-9
_QUANTA = {places: Decimal(1).scaleb(-places) for places in range(7)}


def publish(value: float | None, places: int) -> float | None:
    """Round half away from zero, on the shortest decimal form (2.675 -> 2.68, not 2.67)."""
    if value is None:
        return None
    rounded = float(Decimal(repr(value)).quantize(_QUANTA[places], rounding=ROUND_HALF_UP))
    return rounded + 0.0  # turns -0.0 into 0.0


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None where it is undefined."""
    if denominator == 0:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class PairStats:
    """Sufficient statistics of one metric (or one bucket of it) over its ratings."""

    ratings: int = 0  # every rating; a session rates a (region, side, metric) at most once
    pairs: int = 0  # ratings with both before and after
    sum_before: float = 0.0  # over pairs
    sum_after: float = 0.0  # over pairs
    responders: int = 0  # pairs whose improvement reaches the MCID

    def __add__(self, other: "PairStats") -> "PairStats":
        return PairStats(
            self.ratings + other.ratings,
            self.pairs + other.pairs,
            self.sum_before + other.sum_before,
            self.sum_after + other.sum_after,
            self.responders + other.responders,
        )


@dataclass(frozen=True)
class SlopeStats:
    """Sums for a least-squares line of y (a rating's before) on x (its time in weeks)."""

    n: int = 0
    sum_x: float = 0.0
    sum_y: float = 0.0
    sum_xx: float = 0.0
    sum_xy: float = 0.0

    def __add__(self, other: "SlopeStats") -> "SlopeStats":
        return SlopeStats(
            self.n + other.n,
            self.sum_x + other.sum_x,
            self.sum_y + other.sum_y,
            self.sum_xx + other.sum_xx,
            self.sum_xy + other.sum_xy,
        )


@dataclass(frozen=True)
class PairFigures:
    pairs: int
    mean_before: float | None
    mean_after: float | None
    mean_change: float | None
    mean_improvement: float | None
    improvement_pct: float | None
    responder_rate: float | None


@dataclass(frozen=True)
class SessionStats:
    sessions: int = 0
    complete_sessions: int = 0
    with_water: int = 0  # both amounts logged
    hydrated: int = 0  # both amounts >= 300 ml
    hydrated_with_feeling: int = 0  # hydrated, felt_unwell_after logged
    hydrated_unwell: int = 0
    not_hydrated_with_feeling: int = 0  # both amounts logged, not hydrated, feeling logged
    not_hydrated_unwell: int = 0


@dataclass(frozen=True)
class AdherenceFigures:
    sessions: int
    complete_sessions: int
    active_days: int
    sessions_per_week: float | None
    current_streak_days: int
    longest_streak_days: int


@dataclass(frozen=True)
class HydrationFigures:
    sessions_with_water: int
    hydrated_sessions: int
    hydrated_rate: float | None
    unwell_rate_hydrated: float | None
    unwell_rate_not_hydrated: float | None


def tenths(value: float) -> int:
    """A stored one-decimal value as an exact integer number of tenths (6.2 -> 62).

    Binary floats make 6.2 - 4.2 = 1.9999999999999996; in tenths it is exactly 20. The SQL
    layer compares the same way (thresholds.tenths: CAST(ROUND(x * 10) AS INTEGER)).
    """
    return round(value * 10)


def improvement_tenths(metric: Metric, before: float, after: float) -> int:
    """after - before in tenths, signed so that positive is better."""
    return metric.direction * (tenths(after) - tenths(before))


def is_responder(metric: Metric, before: float, after: float) -> bool:
    """The contract's rule: an improvement that is positive and reaches mcid_abs, or mcid_pct %
    of before (so a pair 0 -> 0 is not a responder), compared exactly in tenths."""
    improvement = improvement_tenths(metric, before, after)
    if improvement <= 0:
        return False
    if improvement >= tenths(metric.mcid_abs):
        return True
    # improvement >= pct / 100 * before, both sides times 1000 to stay in integers:
    # improvement_t * 1000 >= pct_t * before_t (pct_t: the percentage in tenths).
    return metric.mcid_pct is not None and improvement * 1000 >= tenths(metric.mcid_pct) * tenths(
        before
    )


def is_worse(metric_slug: str, before: float, after: float | None) -> bool:
    """A rating is worse when its improvement is at most -mcid_abs (pain 3 -> 5 is worse,
    3 -> 4 is not), compared exactly in tenths; one without `after` never is. The one rule
    of the write path (session.flagged); thresholds.worse is the same rule in SQL."""
    if after is None:
        return False
    metric = METRICS_BY_SLUG[metric_slug]
    return improvement_tenths(metric, before, after) <= -tenths(metric.mcid_abs)


def pair_figures(stats: PairStats, metric: Metric) -> PairFigures:
    mean_before = ratio(stats.sum_before, stats.pairs)
    mean_after = ratio(stats.sum_after, stats.pairs)
    mean_change = None
    mean_improvement = None
    improvement_pct = None
    if mean_before is not None and mean_after is not None:
        mean_change = mean_after - mean_before
        mean_improvement = metric.direction * mean_change
        if mean_before != 0:  # a mean of values >= 0: zero only when every one is
            improvement_pct = 100 * mean_improvement / mean_before
    return PairFigures(
        pairs=stats.pairs,
        mean_before=publish(mean_before, 2),
        mean_after=publish(mean_after, 2),
        mean_change=publish(mean_change, 2),
        mean_improvement=publish(mean_improvement, 2),
        improvement_pct=publish(improvement_pct, 1),
        responder_rate=publish(ratio(stats.responders, stats.pairs), 3),
    )


def series_means(stats: PairStats) -> tuple[float | None, float | None, float | None]:
    """A series point's published (mean_before, mean_after, mean_change): the same figures
    as pair_figures, without the ones a point does not publish."""
    mean_before = ratio(stats.sum_before, stats.pairs)
    mean_after = ratio(stats.sum_after, stats.pairs)
    if mean_before is None or mean_after is None:
        return publish(mean_before, 2), publish(mean_after, 2), None
    return publish(mean_before, 2), publish(mean_after, 2), publish(mean_after - mean_before, 2)


def least_squares_slope(stats: SlopeStats) -> float | None:
    """Slope of y on x, or None when it is undefined (fewer than 2 points, or x all equal)."""
    if stats.n < 2:
        return None
    centred_xx = stats.sum_xx - stats.sum_x * stats.sum_x / stats.n
    # The sums are floats: equal x leave a rounding residue rather than an exact zero.
    if centred_xx <= 1e-10 * max(stats.sum_xx, 1.0):
        return None
    centred_xy = stats.sum_xy - stats.sum_x * stats.sum_y / stats.n
    return centred_xy / centred_xx


def trend(
    slope_per_week: float | None, ratings: int, period_days: float, metric: Metric
) -> str | None:
    """improving / worsening / stable from the fitted change over the period."""
    if ratings < 3 or slope_per_week is None:
        return None
    fitted_improvement = metric.direction * slope_per_week * period_days / 7
    half_mcid = metric.mcid_abs / 2
    if fitted_improvement >= half_mcid - EPSILON:
        return "improving"
    if fitted_improvement <= -half_mcid + EPSILON:
        return "worsening"
    return "stable"


def streaks(days: Iterable[int], today: int) -> tuple[int, int]:
    """(current, longest) runs of consecutive day numbers.

    The current streak counts back from `today`, or from the day before when `today` has no
    session yet (the day is not over).
    """
    present = set(days)
    longest = 0
    for day in present:
        if day - 1 not in present:
            length = 1
            while day + length in present:
                length += 1
            longest = max(longest, length)
    anchor = today if today in present else today - 1
    current = 0
    while anchor - current in present:
        current += 1
    return current, longest


def adherence_figures(
    stats: SessionStats, active_days: list[int], today: int, period_days: float
) -> AdherenceFigures:
    current, longest = streaks(active_days, today)
    return AdherenceFigures(
        sessions=stats.sessions,
        complete_sessions=stats.complete_sessions,
        active_days=len(set(active_days)),
        sessions_per_week=publish(ratio(stats.sessions, period_days / 7), 2),
        current_streak_days=current,
        longest_streak_days=longest,
    )


def hydration_figures(stats: SessionStats) -> HydrationFigures:
    return HydrationFigures(
        sessions_with_water=stats.with_water,
        hydrated_sessions=stats.hydrated,
        hydrated_rate=publish(ratio(stats.hydrated, stats.with_water), 3),
        unwell_rate_hydrated=publish(ratio(stats.hydrated_unwell, stats.hydrated_with_feeling), 3),
        unwell_rate_not_hydrated=publish(
            ratio(stats.not_hydrated_unwell, stats.not_hydrated_with_feeling), 3
        ),
    )
