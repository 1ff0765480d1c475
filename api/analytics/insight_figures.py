"""The pure half of insights: sufficient statistics in, published figures out.

The database returns ratings in integer tenths (one-decimal values times 10, exact on every
backend), counts and sums of them; these functions turn them into means, retention, slopes,
Welch intervals and verdicts, and round only what is published (figures.publish).

The Student t quantile is SciPy's (`scipy.special.stdtrit`, the function behind
`scipy.stats.t.ppf`): Welch's degrees of freedom are fractional, a maintained library gets the
quantile right to the last digit for every df, and a hand-written inverse of the incomplete
beta function would be one more numerical routine to own. scipy.special is imported rather than
scipy.stats, which would add about half a second to the app's start for nothing.
"""

from dataclasses import dataclass
from math import sqrt

from scipy.special import stdtrit

from api.analytics.figures import SlopeStats, least_squares_slope, publish
from models.catalog import Metric

MICROSECONDS_PER_DAY = 86_400 * 1_000_000
MIN_GROUP = 3  # what_works lists a level only when it and the rest each have this many pairs


def t_quantile_975(df: float) -> float:
    """t(0.975, df): the two-sided 95 % quantile of Student's t with `df` degrees of freedom."""
    return float(stdtrit(df, 0.975))


@dataclass(frozen=True)
class CarryOverStats:
    intervals: int
    sum_relief_tenths: int
    sum_rebound_tenths: int
    median_gap_sum_us: int  # the middle gap, or the two middle ones, in microseconds
    median_gap_count: int  # 1 or 2


@dataclass(frozen=True)
class CarryOverFigures:
    intervals: int
    mean_relief: float
    mean_rebound: float
    retention_pct: float | None
    median_gap_days: float


def carry_over_figures(stats: CarryOverStats) -> CarryOverFigures:
    relief, rebound = stats.sum_relief_tenths, stats.sum_rebound_tenths
    # retention = 100 (relief - rebound) / relief: the intervals' count cancels out.
    retention = publish_ratio(100 * (relief - rebound), relief, 1) if relief > 0 else None
    return CarryOverFigures(
        intervals=stats.intervals,
        mean_relief=publish_ratio(relief, 10 * stats.intervals, 2),
        mean_rebound=publish_ratio(rebound, 10 * stats.intervals, 2),
        retention_pct=retention,
        median_gap_days=publish_ratio(
            stats.median_gap_sum_us, stats.median_gap_count * MICROSECONDS_PER_DAY, 2
        ),
    )


@dataclass(frozen=True)
class AsymmetryStats:
    sessions: int
    sum_diff_before_tenths: int
    sessions_with_after: int
    sum_diff_after_tenths: int
    slope: SlopeStats  # y = left.before - right.before, x = weeks since the period's start


@dataclass(frozen=True)
class AsymmetryFigures:
    sessions: int
    mean_diff_before: float
    mean_diff_after: float | None
    slope_per_week: float | None
    worse_side: str | None


def asymmetry_figures(stats: AsymmetryStats, metric: Metric) -> AsymmetryFigures:
    diff_before = stats.sum_diff_before_tenths  # / (10 x sessions)
    slope = least_squares_slope(stats.slope) if stats.sessions >= 3 else None
    worse_side = None
    # Exact, in integers: |sum / (10 n)| >= mcid  <=>  |sum| >= 10 mcid n.
    if abs(diff_before) >= round(10 * metric.mcid_abs) * stats.sessions:
        # left - right > 0: left is higher, which is worse where lower is better.
        left_higher = diff_before > 0
        worse_side = "left" if left_higher == (metric.better == "lower") else "right"
    return AsymmetryFigures(
        sessions=stats.sessions,
        mean_diff_before=publish_ratio(diff_before, 10 * stats.sessions, 2),
        mean_diff_after=publish_ratio(
            stats.sum_diff_after_tenths, 10 * stats.sessions_with_after, 2
        )
        if stats.sessions_with_after
        else None,
        slope_per_week=publish(slope, 3),
        worse_side=worse_side,
    )


@dataclass(frozen=True)
class LevelStats:
    """Pairs' improvements in tenths: count, sum and sum of squares (all exact integers)."""

    n: int = 0
    sum_tenths: int = 0
    sum_squares_tenths: int = 0

    def __add__(self, other: "LevelStats") -> "LevelStats":
        return LevelStats(
            self.n + other.n,
            self.sum_tenths + other.sum_tenths,
            self.sum_squares_tenths + other.sum_squares_tenths,
        )

    def __sub__(self, other: "LevelStats") -> "LevelStats":
        return LevelStats(
            self.n - other.n,
            self.sum_tenths - other.sum_tenths,
            self.sum_squares_tenths - other.sum_squares_tenths,
        )

    @property
    def centred_squares(self) -> int:
        """n x the sum of squared deviations, in tenths squared: exact, 0 iff no spread."""
        return self.n * self.sum_squares_tenths - self.sum_tenths * self.sum_tenths

    @property
    def variance(self) -> float:
        """The sample variance (n - 1), in the metric's unit squared."""
        return self.centred_squares / (100 * self.n * (self.n - 1))


@dataclass(frozen=True)
class ComparisonFigures:
    n: int
    mean_improvement: float
    rest_n: int
    rest_mean_improvement: float
    difference: float
    ci95_low: float
    ci95_high: float
    verdict: str


def welch_interval(level: LevelStats, rest: LevelStats) -> tuple[int, int, float | None]:
    """The difference of means as an exact ratio (numerator, denominator), and the margin of
    its Welch 95 % interval: t(0.975, df) x se with df by Welch-Satterthwaite, or None when
    se = 0 (both bounds are then the difference). Needs at least 2 pairs on each side."""
    numerator = level.sum_tenths * rest.n - rest.sum_tenths * level.n
    denominator = 10 * level.n * rest.n
    if level.centred_squares == 0 and rest.centred_squares == 0:
        return numerator, denominator, None
    share_level = level.variance / level.n
    share_rest = rest.variance / rest.n
    se_squared = share_level + share_rest
    df = se_squared**2 / (share_level**2 / (level.n - 1) + share_rest**2 / (rest.n - 1))
    return numerator, denominator, t_quantile_975(df) * sqrt(se_squared)


def verdict(low: float, high: float) -> str:
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "unclear"


def comparison_figures(level: LevelStats, rest: LevelStats) -> ComparisonFigures | None:
    """One level against the rest of its factor, or None when either has fewer than 3 pairs."""
    if level.n < MIN_GROUP or rest.n < MIN_GROUP:
        return None
    numerator, denominator, margin = welch_interval(level, rest)
    difference = publish_ratio(numerator, denominator, 2)
    if margin is None:  # se = 0: both bounds are the difference, exactly
        low = high = numerator / denominator
        published_low = published_high = difference
    else:
        low, high = numerator / denominator - margin, numerator / denominator + margin
        published_low, published_high = _published(low, 2), _published(high, 2)
    return ComparisonFigures(
        n=level.n,
        mean_improvement=publish_ratio(level.sum_tenths, 10 * level.n, 2),
        rest_n=rest.n,
        rest_mean_improvement=publish_ratio(rest.sum_tenths, 10 * rest.n, 2),
        difference=difference,
        ci95_low=published_low,
        ci95_high=published_high,
        verdict=verdict(low, high),
    )


def _published(value: float, places: int) -> float:
    published = publish(value, places)
    assert published is not None
    return published


def publish_ratio(numerator: int, denominator: int, places: int) -> float:
    """numerator / denominator (integers, denominator > 0) rounded half away from zero, exactly:
    a float quotient could sit just below a half that the exact ratio reaches."""
    scale = 10**places
    magnitude = (2 * abs(numerator) * scale + denominator) // (2 * denominator)
    return (magnitude if numerator >= 0 else -magnitude) / scale + 0.0
