"""The pure half of summaries: sufficient statistics in, published figures out (table-driven)."""

import pytest

from api.analytics.figures import (
    PairStats,
    SessionStats,
    SlopeStats,
    adherence_figures,
    hydration_figures,
    is_responder,
    is_worse,
    least_squares_slope,
    pair_figures,
    publish,
    ratio,
    streaks,
    tenths,
    trend,
)
from models.catalog import METRICS_BY_SLUG

PAIN = METRICS_BY_SLUG["pain"]
STIFFNESS = METRICS_BY_SLUG["stiffness"]
MOBILITY = METRICS_BY_SLUG["mobility"]
ROM = METRICS_BY_SLUG["rom"]


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (None, 2, None),
        (2.675, 2, 2.68),  # half up on the decimal form (binary 2.675 would round down)
        (0.125, 2, 0.13),
        (-0.125, 2, -0.13),  # away from zero
        (-0.001, 2, 0.0),  # never -0.0
        (24.380165289, 1, 24.4),
        (1 / 3, 3, 0.333),
        (6.2 - 4.2, 2, 2.0),
        (5.0, 2, 5.0),
    ],
)
def test_publish_rounds_half_up(value, places, expected):
    published = publish(value, places)
    assert published == expected
    if published is not None:
        assert str(published) != "-0.0"


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"), [(1, 2, 0.5), (0, 5, 0.0), (3, 0, None)]
)
def test_ratio(numerator, denominator, expected):
    assert ratio(numerator, denominator) == expected


@pytest.mark.parametrize(
    ("metric", "before", "after", "responder"),
    [
        (PAIN, 6, 4, True),  # improvement 2 = mcid_abs
        (PAIN, 6.2, 4.2, True),  # 6.2 - 4.2 = 1.9999999999999996 in floats: still 2
        (PAIN, 6, 4.1, True),  # 1.9 < 2, but 1.9 >= 30 % of 6 = 1.8
        (PAIN, 8, 6.1, False),  # 1.9 < 2 and 1.9 < 30 % of 8 = 2.4
        (PAIN, 3, 2.1, True),  # 0.9 < 2, but 30 % of 3 = 0.9: responder by the 30 % rule only
        (PAIN, 3, 2.2, False),  # 0.8 < 0.9
        (PAIN, 0, 0, False),  # 0 -> 0: no improvement, not a responder (30 % of 0 is 0)
        (PAIN, 5, 5, False),  # no change: not a responder
        (PAIN, 0.1, 0, True),  # +0.1 is positive and reaches 30 % of 0.1 = 0.03
        (PAIN, 10, 7, True),  # 3 = 30 % of 10 exactly (and >= mcid_abs 2)
        (PAIN, 2, 1.4, True),  # 0.6 = 30 % of 2 exactly, in tenths: 6 * 1000 >= 300 * 20
        (PAIN, 2, 1.5, False),  # 0.5 < 0.6
        (PAIN, 5.1, 3.1, True),  # 2 = mcid_abs exactly, though 5.1 - 3.1 = 1.9999999999999996
        (PAIN, 9.7, 7.8, False),  # 1.9 < 2 and < 30 % of 9.7 = 2.91
        (PAIN, 4, 6, False),  # worse
        (STIFFNESS, 5, 3.5, True),  # 1.5 = 30 % of 5
        (MOBILITY, 4, 6, True),  # higher is better: +2
        (MOBILITY, 4, 5.9, False),  # +1.9, and mobility has no percentage rule
        (MOBILITY, 6, 4, False),  # -2 is worse, not better
        (ROM, 30, 35, True),  # +5 degrees
        (ROM, 30, 34.9, False),
        (ROM, 35, 30, False),
    ],
)
def test_is_responder(metric, before, after, responder):
    assert is_responder(metric, before, after) is responder


@pytest.mark.parametrize(
    ("metric", "before", "after", "worse"),
    [
        ("pain", 3, 5, True),  # -2 = -mcid_abs: at the threshold is worse
        ("pain", 3, 4, False),  # -1
        ("pain", 3.1, 5.1, True),  # 5.1 - 3.1 = 2.0000000000000004 in floats; exactly 2
        ("pain", 3.1, 5, False),  # -1.9
        ("pain", 4.2, 6.2, True),  # 6.2 - 4.2 = 1.9999999999999996 in floats; exactly 2
        ("pain", 3, None, False),  # no after: never worse
        ("pain", 5, 3, False),  # better
        ("stiffness", 0, 2, True),
        ("mobility", 6, 4, True),  # higher is better: -2
        ("mobility", 6, 4.1, False),
        ("mobility", 4, 6, False),
        ("rom", 40, 35, True),  # -5 degrees = -mcid_abs
        ("rom", 40, 35.1, False),
        ("rom", 35, 40, False),
    ],
)
def test_is_worse(metric, before, after, worse):
    assert is_worse(metric, before, after) is worse


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (3.1, 31), (5.1, 51), (0.3, 3), (179.9, 1799)]
)
def test_tenths_is_exact(value, expected):
    assert tenths(value) == expected


@pytest.mark.parametrize(
    ("stats", "metric", "expected"),
    [
        # No pairs: counts stay, every mean and rate is null, nothing divides by zero.
        (
            PairStats(ratings=2, pairs=0),
            PAIN,
            (0, None, None, None, None, None, None),
        ),
        # Pain 6->3 and 4->4: before 10/2 = 5, after 7/2 = 3.5, change -1.5, improvement
        # +1.5, pct 100 * 1.5 / 5 = 30.0, responders 1/2 = 0.5.
        (
            PairStats(ratings=2, pairs=2, sum_before=10, sum_after=7, responders=1),
            PAIN,
            (2, 5.0, 3.5, -1.5, 1.5, 30.0, 0.5),
        ),
        # ROM 30->38, 32->35: before 31, after 36.5, change +5.5, improvement +5.5 (higher is
        # better), pct 100 * 5.5 / 31 = 17.74 -> 17.7, responders 1/2.
        (
            PairStats(ratings=3, pairs=2, sum_before=62, sum_after=73, responders=1),
            ROM,
            (2, 31.0, 36.5, 5.5, 5.5, 17.7, 0.5),
        ),
        # Mobility 6->4: change -2, improvement -2 (worse), pct -2 / 6 = -33.3 %.
        (
            PairStats(ratings=1, pairs=1, sum_before=6, sum_after=4, responders=0),
            MOBILITY,
            (1, 6.0, 4.0, -2.0, -2.0, -33.3, 0.0),
        ),
        # Before 0 everywhere: improvement_pct is null, not a division by zero.
        (
            PairStats(ratings=1, pairs=1, sum_before=0, sum_after=2, responders=0),
            PAIN,
            (1, 0.0, 2.0, 2.0, -2.0, None, 0.0),
        ),
        # Three pairs summing to 1/3 steps: 10/3 = 3.333 -> 3.33, 5/3 -> 1.67, 1 responder
        # of 3 = 0.333; change 5/3 - 10/3 = -1.667 -> -1.67; pct 100 * 1.6667 / 3.3333 = 50.0.
        (
            PairStats(ratings=3, pairs=3, sum_before=10, sum_after=5, responders=1),
            STIFFNESS,
            (3, 3.33, 1.67, -1.67, 1.67, 50.0, 0.333),
        ),
    ],
)
def test_pair_figures(stats, metric, expected):
    figures = pair_figures(stats, metric)
    assert (
        figures.pairs,
        figures.mean_before,
        figures.mean_after,
        figures.mean_change,
        figures.mean_improvement,
        figures.improvement_pct,
        figures.responder_rate,
    ) == expected


def _slope_stats(points: list[tuple[float, float]]) -> SlopeStats:
    return SlopeStats(
        n=len(points),
        sum_x=sum(x for x, _ in points),
        sum_y=sum(y for _, y in points),
        sum_xx=sum(x * x for x, _ in points),
        sum_xy=sum(x * y for x, y in points),
    )


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([], None),
        ([(1, 5)], None),
        ([(1, 5), (1, 7), (1, 9)], None),  # every x equal: no line
        ([(0, 2), (1, 4), (2, 6)], 2.0),  # exactly y = 2 + 2x
        ([(0, 6), (1, 6), (2, 6)], 0.0),
        # x = 0, 1, 3; y = 30, 32, 34: mean x 4/3, mean y 32; Sxy = 8/3 + 0 + 10/3 = 6;
        # Sxx = 16/9 + 1/9 + 25/9 = 42/9; slope = 6 / (42/9) = 54/42 = 1.2857...
        ([(0, 30), (1, 32), (3, 34)], 54 / 42),
    ],
)
def test_least_squares_slope(points, expected):
    slope = least_squares_slope(_slope_stats(points))
    if expected is None:
        assert slope is None
    else:
        assert slope == pytest.approx(expected)


@pytest.mark.parametrize(
    ("slope", "ratings", "days", "metric", "expected"),
    [
        (None, 5, 28, PAIN, None),
        (-5.0, 2, 28, PAIN, None),  # fewer than 3 ratings
        # pain falls 0.25/week over 28 days: fitted change -1, improvement +1 = mcid_abs/2.
        (-0.25, 3, 28, PAIN, "improving"),
        (-0.24, 3, 28, PAIN, "stable"),  # +0.96 < 1
        (0.25, 3, 28, PAIN, "worsening"),  # -1 <= -1
        (0.0, 10, 90, PAIN, "stable"),
        # rom (higher better, mcid 5): +0.625/week * 4 weeks = +2.5 = 5 / 2 -> improving.
        (0.625, 3, 28, ROM, "improving"),
        (-0.625, 3, 28, ROM, "worsening"),
        (0.6, 3, 28, ROM, "stable"),  # +2.4
        # mobility (higher better, mcid 2): -0.5/week * 2 weeks = -1 -> worsening.
        (-0.5, 4, 14, MOBILITY, "worsening"),
        (5.0, 3, 0, PAIN, "stable"),  # a zero-length period fits no change
    ],
)
def test_trend(slope, ratings, days, metric, expected):
    assert trend(slope, ratings, days, metric) == expected


@pytest.mark.parametrize(
    ("days", "today", "current", "longest"),
    [
        ([], 10, 0, 0),
        ([10], 10, 1, 1),
        ([7, 8, 9], 10, 3, 3),  # today has no session yet: count back from yesterday
        ([7, 8, 9, 10], 10, 4, 4),
        ([7, 8], 10, 0, 2),  # yesterday empty too: the streak is broken
        ([1, 2, 3, 4, 8, 9, 10], 10, 3, 4),
        ([3, 3, 4], 4, 2, 2),  # duplicates do not count twice
    ],
)
def test_streaks(days, today, current, longest):
    assert streaks(days, today) == (current, longest)


def test_adherence_figures():
    # 5 sessions over 14 days: 5 / (14 / 7) = 2.5 per week; days 0, 1, 3, 8, 9 with `to` on 14.
    figures = adherence_figures(
        SessionStats(sessions=5, complete_sessions=4), [0, 1, 3, 8, 9], 14, 14.0
    )
    assert (figures.sessions, figures.complete_sessions, figures.active_days) == (5, 4, 5)
    assert figures.sessions_per_week == 2.5
    assert (figures.current_streak_days, figures.longest_streak_days) == (0, 2)
    # 2 sessions in 3.5 days: 2 / 0.5 = 4.0; an empty-length period has no rate.
    assert adherence_figures(SessionStats(sessions=2), [0], 0, 3.5).sessions_per_week == 4.0
    assert adherence_figures(SessionStats(), [], 0, 0.0).sessions_per_week is None


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        (SessionStats(), (0, 0, None, None, None)),
        # 4 with water, 2 hydrated: 0.5; unwell 1 of 2 hydrated, 1 of 1 not hydrated.
        (
            SessionStats(
                sessions=5,
                with_water=4,
                hydrated=2,
                hydrated_with_feeling=2,
                hydrated_unwell=1,
                not_hydrated_with_feeling=1,
                not_hydrated_unwell=1,
            ),
            (4, 2, 0.5, 0.5, 1.0),
        ),
        # 3 with water, 1 hydrated: 1/3 = 0.333; nobody logged how they felt.
        (SessionStats(sessions=3, with_water=3, hydrated=1), (3, 1, 0.333, None, None)),
    ],
)
def test_hydration_figures(stats, expected):
    figures = hydration_figures(stats)
    assert (
        figures.sessions_with_water,
        figures.hydrated_sessions,
        figures.hydrated_rate,
        figures.unwell_rate_hydrated,
        figures.unwell_rate_not_hydrated,
    ) == expected
