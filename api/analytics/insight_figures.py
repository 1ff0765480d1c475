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
from fractions import Fraction
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
    relief = Fraction(stats.sum_relief_tenths, 10 * stats.intervals)
    rebound = Fraction(stats.sum_rebound_tenths, 10 * stats.intervals)
    retention = 100 * (relief - rebound) / relief if relief > 0 else None
    gap = Fraction(stats.median_gap_sum_us, stats.median_gap_count * MICROSECONDS_PER_DAY)
    return CarryOverFigures(
        intervals=stats.intervals,
        mean_relief=_publish_exact(relief, 2),
        mean_rebound=_publish_exact(rebound, 2),
        retention_pct=None if retention is None else _publish_exact(retention, 1),
        median_gap_days=_publish_exact(gap, 2),
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
    diff_before = Fraction(stats.sum_diff_before_tenths, 10 * stats.sessions)
    diff_after = (
        Fraction(stats.sum_diff_after_tenths, 10 * stats.sessions_with_after)
        if stats.sessions_with_after
        else None
    )
    slope = least_squares_slope(stats.slope) if stats.sessions >= 3 else None
    worse_side = None
    # Exact: a mean of one-decimal values against the catalog's MCID, as fractions.
    if abs(diff_before) >= Fraction(str(metric.mcid_abs)):
        # left - right > 0: left is higher, which is worse where lower is better.
        left_higher = diff_before > 0
        worse_side = "left" if left_higher == (metric.better == "lower") else "right"
    return AsymmetryFigures(
        sessions=stats.sessions,
        mean_diff_before=_publish_exact(diff_before, 2),
        mean_diff_after=None if diff_after is None else _publish_exact(diff_after, 2),
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
    def mean(self) -> Fraction:
        return Fraction(self.sum_tenths, 10 * self.n)

    @property
    def variance(self) -> Fraction:
        """The sample variance (n - 1), in the metric's unit squared."""
        centred = self.n * self.sum_squares_tenths - self.sum_tenths * self.sum_tenths
        return Fraction(centred, 100 * self.n * (self.n - 1))


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


def welch_interval(level: LevelStats, rest: LevelStats) -> tuple[Fraction, float, float]:
    """(difference, low, high): the difference of means and its Welch 95 % interval.

    With se = 0 both bounds are the (exact) difference; otherwise difference ± t(0.975, df) se
    with df by Welch-Satterthwaite. Needs at least 2 pairs on each side."""
    difference = level.mean - rest.mean
    share_level = level.variance / level.n
    share_rest = rest.variance / rest.n
    se_squared = share_level + share_rest
    if se_squared == 0:
        return difference, float(difference), float(difference)
    df = se_squared**2 / (share_level**2 / (level.n - 1) + share_rest**2 / (rest.n - 1))
    margin = t_quantile_975(float(df)) * sqrt(se_squared)
    return difference, float(difference) - margin, float(difference) + margin


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
    difference, low, high = welch_interval(level, rest)
    return ComparisonFigures(
        n=level.n,
        mean_improvement=_publish_exact(level.mean, 2),
        rest_n=rest.n,
        rest_mean_improvement=_publish_exact(rest.mean, 2),
        difference=_publish_exact(difference, 2),
        # se = 0: both bounds are the difference, published exactly as it is.
        ci95_low=_publish_exact(difference, 2) if low == high else _published(low, 2),
        ci95_high=_publish_exact(difference, 2) if low == high else _published(high, 2),
        verdict=verdict(low, high),
    )


def _published(value: float, places: int) -> float:
    published = publish(value, places)
    assert published is not None
    return published


def _publish_exact(value: Fraction, places: int) -> float:
    """An exact fraction rounded half away from zero (a float could sit just below the half)."""
    scaled = abs(value) * 10**places
    rounded = int(scaled + Fraction(1, 2))  # floor(x + 1/2) = half up, for x >= 0
    return float((rounded if value >= 0 else -rounded) / Fraction(10**places)) + 0.0
