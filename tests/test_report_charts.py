"""The report's chart geometry (api/reports/charts.py): pure functions, checked without a
browser. What a reader relies on: points inside the plot and spread over it in week order,
round axis ticks, every day of the period in the calendar, bars and intervals on the right
side of zero."""

import re
from datetime import date, timedelta

from api.reports import charts
from models.insights import Asymmetry, WhatWorks
from models.summary import MetricSummary


def _metric(metric: str, befores: list[float | None], afters: list[float | None]) -> MetricSummary:
    first = date(2026, 9, 7)
    return MetricSummary.model_validate(
        {
            "region": "adductors",
            "side": "left",
            "metric": metric,
            "better": "higher" if metric == "rom" else "lower",
            "pairs": 10,
            "mean_before": 1.0,
            "mean_after": 1.0,
            "mean_change": 0.0,
            "mean_improvement": 0.0,
            "improvement_pct": 0.0,
            "responder_rate": 0.5,
            "baseline": {"slope_per_week": None, "trend": None},
            "series": [
                {
                    "start": first + timedelta(weeks=index),
                    "sessions": 0 if before is None else 3,
                    "mean_before": before,
                    "mean_after": after,
                    "mean_change": None,
                }
                for index, (before, after) in enumerate(zip(befores, afters, strict=True))
            ],
        }
    )


def _points(polyline: str) -> list[tuple[float, float]]:
    return [tuple(map(float, pair.split(","))) for pair in polyline.split()]


def test_weekly_points_spread_over_the_plot_in_week_order():
    befores = [40.0 + index for index in range(14)]
    chart = charts.weekly_chart(_metric("rom", befores, [value + 5 for value in befores]))
    (line,) = chart.before_lines
    points = _points(line)
    xs = [x for x, _ in points]
    assert xs == sorted(xs)
    column = (chart.right - chart.left) / 14
    assert xs[0] == round(chart.left + column / 2, 2)
    assert xs[-1] == round(chart.right - column / 2, 2)
    assert all(chart.top <= y <= chart.bottom for _, y in points)
    # Higher values are drawn higher (smaller y); degrees get round ticks of 10.
    assert points[0][1] > points[-1][1]
    assert [tick.label for tick in chart.y_ticks] == ["30", "40", "50", "60", "70"]
    assert chart.unit == "degrees"


def test_weekly_gaps_split_the_line_and_lone_weeks_keep_a_marker():
    befores = [5.0, 6.0, None, 4.0, None, None] + [5.0] * 30
    chart = charts.weekly_chart(_metric("pain", befores, befores))
    assert [len(_points(line)) for line in chart.before_lines] == [2, 30]
    # 36 weeks: only the week standing alone (the 4th) is marked.
    assert chart.before_markers.count("M") == 1
    assert [tick.label for tick in chart.y_ticks] == ["0", "2", "4", "6", "8", "10"]
    assert chart.unit == "0\u201310 scale"


def test_the_calendar_holds_every_day_of_the_period_once():
    first, last = date(2026, 1, 1), date(2026, 12, 31)
    active = [first + timedelta(days=day) for day in range(0, 365, 3)]
    calendars = charts.calendar_charts(first, last, active)
    days = [day.day for chart in calendars for day in chart.days]
    assert days == [first + timedelta(days=n) for n in range(365)]
    assert sum(chart.active_count for chart in calendars) == len(active)
    assert len(calendars) == 2  # half a year each
    squares = "".join(chart.squares(True) for chart in calendars)
    assert squares.count("M") == len(active)
    for chart in calendars:  # Monday on top, every square inside the drawing
        assert all(day.y == charts.CALENDAR_TOP + day.day.weekday() * 16 for day in chart.days)
        assert all(day.x + charts.CELL <= chart.width for day in chart.days)


def test_left_right_bars_grow_from_zero_towards_the_higher_side():
    entries = [
        Asymmetry(region="adductors", metric="rom", better="higher", sessions=5,
                  mean_diff_before=-10.0, mean_diff_after=-4.0, slope_per_week=None,
                  worse_side="left"),
        Asymmetry(region="adductors", metric="pain", better="lower", sessions=5,
                  mean_diff_before=2.0, mean_diff_after=None, slope_per_week=None,
                  worse_side="left"),
    ]  # fmt: skip
    groups = charts.asymmetry_groups(entries)
    titles = [group.title for group in groups]
    assert titles == ["Range of motion (degrees)", "Pain (0\u201310 scale)"]
    rom = groups[0].chart.rows[0].bars
    assert [bar.label for bar in rom] == ["before", "after"]
    assert all(bar.x + bar.width == groups[0].chart.zero for bar in rom)  # left of zero
    assert rom[0].width > rom[1].width
    pain = groups[1].chart.rows[0].bars
    assert len(pain) == 1
    assert pain[0].x == groups[1].chart.zero


def test_what_works_intervals_hold_their_difference():
    entry = {
        "region": "adductors", "side": "left", "metric": "pain", "better": "lower",
        "factor": "tool", "n": 5, "mean_improvement": 2.0, "rest_n": 5,
        "rest_mean_improvement": 1.0, "verdict": "better",
    }  # fmt: skip
    entries = [
        WhatWorks(**entry, level="ball", difference=1.0, ci95_low=0.5, ci95_high=1.5),
        WhatWorks(**entry, level="stick", difference=-1.0, ci95_low=-3.0, ci95_high=0.5),
    ]
    (group,) = charts.what_works_groups(entries)
    first, second = group.chart.rows
    assert first.low < first.point < first.high
    assert first.low > group.chart.zero  # an interval above zero
    assert second.low < group.chart.zero < second.high
    assert first.label == "Tool: ball"
    assert re.fullmatch(r"-?[\d.]+", group.chart.ticks[0].label)
