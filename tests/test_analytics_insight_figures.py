"""The pure layer of insights: table-driven cases, computed by hand."""

import pytest

from api.analytics.figures import SlopeStats
from api.analytics.insight_figures import (
    AsymmetryStats,
    CarryOverStats,
    LevelStats,
    asymmetry_figures,
    carry_over_figures,
    comparison_figures,
    publish_ratio,
    t_quantile_975,
    verdict,
    welch_interval,
)
from models.catalog import METRICS_BY_SLUG

DAY_US = 86_400 * 1_000_000


@pytest.mark.parametrize(
    ("df", "quantile"),
    [
        # Student t tables (and R's qt(0.975, df)).
        (1, 12.706205),
        (2, 4.302653),
        (4, 2.776445),
        (10, 2.228139),
        (30, 2.042272),
        (4.7637795, 2.609398),  # fractional, as Welch's df is
        (1e9, 1.959964),
    ],
)
def test_t_quantile(df, quantile):
    assert t_quantile_975(df) == pytest.approx(quantile, abs=1e-6)


@pytest.mark.parametrize(
    ("numerator", "denominator", "places", "published"),
    [
        (2175, 1000, 2, 2.18),  # half away from zero
        (-2175, 1000, 2, -2.18),
        (1, 3, 2, 0.33),
        (2, 3, 2, 0.67),
        (-1, 1000, 2, 0.0),  # no -0.0
        (1005, 10, 0, 101.0),
        (1, 20, 1, 0.1),
        (1, 200, 2, 0.01),  # 0.005 exactly
        (-1, 200, 2, -0.01),
    ],
)
def test_publish_ratio(numerator, denominator, places, published):
    result = publish_ratio(numerator, denominator, places)
    assert result == published
    assert str(result) != "-0.0"


def test_carry_over_figures():
    # 3 intervals: relief 2 + 0.5 + 0 = 2.5 (25 tenths), rebound 1 + 1.5 - 0.3 = 2.2 (22 tenths).
    # mean relief 0.8333 -> 0.83, rebound 0.7333 -> 0.73, retention 100 x 0.3 / 2.5 = 12.0;
    # median gap: one middle gap of 8 hours = 0.3333 -> 0.33.
    figures = carry_over_figures(CarryOverStats(3, 25, 22, DAY_US // 3, 1))
    assert figures.intervals == 3
    assert (figures.mean_relief, figures.mean_rebound) == (0.83, 0.73)
    assert figures.retention_pct == 12.0
    assert figures.median_gap_days == 0.33
    # Even count: the two middle gaps 1 and 2 days -> 1.5. Relief 0: retention null.
    figures = carry_over_figures(CarryOverStats(2, 0, 10, 3 * DAY_US, 2))
    assert (figures.mean_relief, figures.mean_rebound, figures.retention_pct) == (0.0, 0.5, None)
    assert figures.median_gap_days == 1.5
    # Negative relief: null too.
    assert carry_over_figures(CarryOverStats(1, -5, 0, 0, 1)).retention_pct is None


@pytest.mark.parametrize(
    ("metric", "sum_tenths", "sessions", "worse_side"),
    [
        ("pain", 20, 1, "left"),  # left 2 higher, lower is better: left worse (at mcid 2)
        ("pain", -20, 1, "right"),
        ("pain", 19, 1, None),
        ("pain", 59, 3, None),  # 1.9667 < 2
        ("mobility", 20, 1, "right"),  # higher is better: left higher, right worse
        ("mobility", -60, 3, "left"),
        ("rom", 49, 1, None),  # mcid 5
        ("rom", -50, 1, "left"),
    ],
)
def test_worse_side(metric, sum_tenths, sessions, worse_side):
    stats = AsymmetryStats(sessions, sum_tenths, 0, 0, SlopeStats())
    figures = asymmetry_figures(stats, METRICS_BY_SLUG[metric])
    assert figures.worse_side == worse_side
    assert figures.mean_diff_after is None
    assert figures.slope_per_week is None


def test_level_stats_variance_is_exact():
    # 0.1, 0.2, 0.3: sample variance 0.01; rest = total - level.
    level = LevelStats(3, 6, 14)
    assert level.centred_squares == 3 * 14 - 36
    assert level.variance == pytest.approx(0.01)
    total = level + LevelStats(2, 10, 50)
    assert total - level == LevelStats(2, 10, 50)
    assert LevelStats(3, 60, 1200).centred_squares == 0  # 2, 2, 2


def test_welch_interval_hand_computed():
    # (4, 3, 5) against (1, 0, 2): difference 3, se sqrt(2/3) = 0.816497, df 4,
    # t 2.776445 -> margin 2.266958: [0.733042, 5.266958].
    level = LevelStats(3, 120, 40**2 + 30**2 + 50**2)
    rest = LevelStats(3, 30, 10**2 + 0 + 20**2)
    numerator, denominator, margin = welch_interval(level, rest)
    assert numerator / denominator == 3
    assert margin == pytest.approx(2.266958, abs=1e-6)
    figures = comparison_figures(level, rest)
    assert figures is not None
    assert (figures.ci95_low, figures.ci95_high, figures.verdict) == (0.73, 5.27, "better")
    # One group without spread: df = n - 1 of the other. (1, 1, 1) against (4, 3, 5):
    # se = sqrt(1/3), df = 2, t 4.302653 -> margin 2.484138; difference -3 ->
    # [-5.484138, -0.515862]: worse.
    figures = comparison_figures(LevelStats(3, 30, 300), level)
    assert figures is not None
    assert (figures.ci95_low, figures.ci95_high, figures.verdict) == (-5.48, -0.52, "worse")


def test_welch_interval_with_no_spread():
    # (2, 2, 2) against (1.9, 1.9, 1.9): se 0, both bounds = the difference 0.1 exactly.
    level = LevelStats(3, 60, 3 * 400)
    rest = LevelStats(3, 57, 3 * 361)
    numerator, denominator, margin = welch_interval(level, rest)
    assert (numerator, denominator, margin) == (3 * 60 - 3 * 57, 90, None)
    figures = comparison_figures(level, rest)
    assert figures is not None
    assert (figures.difference, figures.ci95_low, figures.ci95_high) == (0.1, 0.1, 0.1)
    assert figures.verdict == "better"
    # Equal constant groups: difference 0, unclear.
    same = comparison_figures(level, level)
    assert same is not None
    assert (same.difference, same.ci95_low, same.ci95_high, same.verdict) == (
        0.0,
        0.0,
        0.0,
        "unclear",
    )


def test_comparison_needs_three_pairs_on_each_side():
    three = LevelStats(3, 30, 300)
    two = LevelStats(2, 20, 200)
    assert comparison_figures(three, two) is None
    assert comparison_figures(two, three) is None


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0.01, 2, "better"), (0, 2, "unclear"), (-2, -0.01, "worse"), (-2, 0, "unclear")],
)
def test_verdict(low, high, expected):
    assert verdict(low, high) == expected
