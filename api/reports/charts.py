"""The report's charts as geometry: pure functions from published figures to coordinates in
an SVG view box. The markup is in templates/reports/charts.html (Jinja2 macros, autoescaped),
so nothing a person typed is ever written into an SVG by hand.

Hand-made rather than a chart library: four small chart kinds, each an inline `<svg>` with
`role="img"` and a `<title>`, sized by its view box (it scales to any width without
scrolling), the same markup for the browser and the PDF renderer, no script, no external
font, and a few microseconds per chart instead of a library's document model.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from models.catalog import METRICS_BY_SLUG, REGIONS
from models.insights import Asymmetry, WhatWorks
from models.summary import MetricSummary

WIDTH = 420
_REGION_NAMES = {region.slug: region.name for region in REGIONS}
# English month names, not the locale's (a server's locale must not change a report).
MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_MONTHS = tuple(name[:3] for name in MONTH_NAMES)


def short_date(day: date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]}"


def region_name(slug: str) -> str:
    return _REGION_NAMES.get(slug, slug)


def short_region_name(slug: str) -> str:
    """The region's name without its gloss: 'Adductors (inner thigh)' -> 'Adductors'."""
    return region_name(slug).split(" (")[0]


def metric_name(slug: str) -> str:
    metric = METRICS_BY_SLUG.get(slug)
    return metric.name if metric else slug


def unit_of(slug: str) -> str:
    """The metric's unit for an axis: 'degrees', or '0-10 scale' for the rating scales."""
    metric = METRICS_BY_SLUG[slug]
    return "degrees" if metric.unit == "degrees" else f"{metric.min:g}\u2013{metric.max:g} scale"


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: float


@dataclass
class WeeklyChart:
    """Mean before and mean after per week, one line each (a gap where a week has none).

    Lines, markers and grid are a few paths rather than an element per point: the PDF
    renderer draws every SVG element in Python, and a year of weeks is hundreds of them."""

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    before_lines: list[str]
    after_lines: list[str]
    before_markers: str
    after_markers: str
    unit: str

    @property
    def grid(self) -> str:
        return "".join(f"M{self.left} {tick.position}H{self.right}" for tick in self.y_ticks)


MARKERS_UP_TO = 27  # weeks; a longer series marks only the weeks that stand alone


def _polylines(segments: list[list[Point]]) -> list[str]:
    return [" ".join(f"{p.x},{p.y}" for p in segment) for segment in segments if len(segment) > 1]


def _marked(segments: list[list[Point]], count: int) -> list[Point]:
    if count <= MARKERS_UP_TO:
        return [point for segment in segments for point in segment]
    return [segment[0] for segment in segments if len(segment) == 1]


def _circles(points: list[Point]) -> str:
    return "".join(f"M{p.x - 3} {p.y}a3 3 0 1 0 6 0a3 3 0 1 0 -6 0" for p in points)


def _squares(points: list[Point]) -> str:
    return "".join(f"M{p.x - 3} {p.y - 3}h6v6h-6z" for p in points)


def _y_range(metric_slug: str, values: Sequence[float]) -> tuple[float, float]:
    metric = METRICS_BY_SLUG[metric_slug]
    if metric.max - metric.min <= 10:
        return metric.min, metric.max
    # Wide scales (degrees): the data's range to the nearest 10, within the metric's bounds.
    low = max(metric.min, math.floor((min(values, default=metric.min) - 5) / 10) * 10)
    high = min(metric.max, math.ceil((max(values, default=metric.max) + 5) / 10) * 10)
    return (low, high) if high > low else (metric.min, metric.max)


def _segments(points: Sequence[Point | None]) -> list[list[Point]]:
    segments: list[list[Point]] = [[]]
    for point in points:
        if point is None:
            if segments[-1]:
                segments.append([])
        else:
            segments[-1].append(point)
    return [segment for segment in segments if segment]


def _label_every(count: int, most: int) -> int:
    return max(1, math.ceil(count / most))


def weekly_chart(metric: MetricSummary) -> WeeklyChart:
    width, height = WIDTH, 200
    left, right, top, bottom = 36.0, width - 10.0, 30.0, height - 28.0
    values = [
        value
        for point in metric.series
        for value in (point.mean_before, point.mean_after)
        if value is not None
    ]
    low, high = _y_range(metric.metric, values)
    count = max(len(metric.series), 1)
    column = (right - left) / count

    def x_of(index: int) -> float:
        return round(left + (index + 0.5) * column, 2)

    def y_of(value: float) -> float:
        return round(bottom - (value - low) / (high - low) * (bottom - top), 2)

    def line(attribute: str) -> list[list[Point]]:
        points = []
        for index, point in enumerate(metric.series):
            value = getattr(point, attribute)
            points.append(None if value is None else Point(x_of(index), y_of(value), value))
        return _segments(points)

    tick_step = _nice((high - low) / 5)
    y_ticks = [
        Tick(y_of(low + tick_step * part), f"{low + tick_step * part:g}")
        for part in range(int((high - low) / tick_step) + 1)
    ]
    every = _label_every(len(metric.series), 6)
    x_ticks = [
        Tick(x_of(index), short_date(point.start))
        for index, point in enumerate(metric.series)
        if index % every == 0
    ]
    before, after = line("mean_before"), line("mean_after")
    count = len(metric.series)
    return WeeklyChart(
        width, height, left, right, top, bottom, y_ticks, x_ticks,
        before_lines=_polylines(before),
        after_lines=_polylines(after),
        before_markers=_circles(_marked(before, count)),
        after_markers=_squares(_marked(after, count)),
        unit=unit_of(metric.metric),
    )  # fmt: skip


@dataclass(frozen=True)
class Day:
    x: int
    y: int
    day: date
    active: bool


@dataclass
class CalendarChart:
    """Weeks as columns (Monday on top), a filled square for each day with a session."""

    width: int
    height: int
    first: date
    last: date
    days: list[Day]
    months: list[Tick]
    active_count: int = 0
    weekdays: list[Tick] = field(default_factory=list)

    def squares(self, active: bool) -> str:
        """One path of the days with (or without) a session."""
        return "".join(
            f"M{day.x} {day.y}h{CELL}v{CELL}h-{CELL}z" for day in self.days if day.active == active
        )


CELL = 13
GAP = 3
CALENDAR_LEFT = 30
CALENDAR_TOP = 18
WEEKS_PER_ROW = 27  # half a year per chart: legible at phone width


def calendar_charts(first: date, last: date, active: Sequence[date]) -> list[CalendarChart]:
    """One chart per half year of the period (the local dates `first` to `last`)."""
    active_days = set(active)
    charts = []
    start = first
    while start <= last:
        monday = start - timedelta(days=start.weekday())
        end = min(last, monday + timedelta(weeks=WEEKS_PER_ROW) - timedelta(days=1))
        days, months = [], []
        day = start
        while day <= end:
            column = (day - monday).days // 7
            x = CALENDAR_LEFT + column * (CELL + GAP)
            days.append(
                Day(x, CALENDAR_TOP + day.weekday() * (CELL + GAP), day, day in active_days)
            )
            if day.day == 1 or day == start:
                months.append(Tick(x, _MONTHS[day.month - 1]))
            day += timedelta(days=1)
        columns = (end - monday).days // 7 + 1
        charts.append(
            CalendarChart(
                width=max(CALENDAR_LEFT + columns * (CELL + GAP), 160),
                height=CALENDAR_TOP + 7 * (CELL + GAP),
                first=start,
                last=end,
                days=days,
                months=_spaced(months, 3 * (CELL + GAP)),
                active_count=sum(1 for item in days if item.active),
                weekdays=[
                    Tick(CALENDAR_TOP + row * (CELL + GAP) + CELL - 2, name)
                    for row, name in ((0, "Mon"), (2, "Wed"), (4, "Fri"), (6, "Sun"))
                ],
            )
        )
        start = end + timedelta(days=1)
    return charts


def _spaced(ticks: list[Tick], gap: float) -> list[Tick]:
    """Month labels that do not overlap (a period starting on the 30th drops its first)."""
    kept: list[Tick] = []
    for tick in ticks:
        if kept and tick.position - kept[-1].position < gap:
            kept[-1] = tick
        else:
            kept.append(tick)
    return kept


@dataclass(frozen=True)
class Bar:
    y: float
    x: float
    width: float
    value: float
    label: str


@dataclass
class BarRow:
    label: str
    y: float
    bars: list[Bar]


@dataclass
class DivergingChart:
    """Rows of bars from a zero line: left minus right, before and after."""

    width: int
    height: int
    zero: float
    left: float
    right: float
    rows: list[BarRow]
    ticks: list[Tick]


ROW = 54  # a row: its label, then the before and after bars


def _scale(limit: float, left: float, right: float) -> tuple[float, list[Tick], float]:
    """A symmetric axis from -limit to +limit: (zero's x, ticks, units per pixel)."""
    nice = _nice(limit)
    per_unit = (right - left) / (2 * nice)
    zero = (left + right) / 2
    ticks = [
        Tick(round(zero + value * per_unit, 2), f"{value:g}")
        for value in (-nice, -nice / 2, 0, nice / 2, nice)
    ]
    return zero, ticks, per_unit


def _nice(limit: float) -> float:
    if limit <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(limit))
    for step in (1, 2, 2.5, 5, 10):
        if step * exponent >= limit:
            return step * exponent
    return 10 * exponent


@dataclass
class AsymmetryGroup:
    """The left/right entries of one metric (one unit, one scale), with their chart."""

    title: str
    entries: list[Asymmetry]
    chart: DivergingChart


def asymmetry_groups(entries: Sequence[Asymmetry]) -> list[AsymmetryGroup]:
    """One chart per metric: pain (0-10) and range of motion (degrees) never share an axis."""
    groups: dict[str, list[Asymmetry]] = {}
    for entry in entries:
        groups.setdefault(entry.metric, []).append(entry)
    return [
        AsymmetryGroup(f"{metric_name(metric)} ({unit_of(metric)})", found, asymmetry_chart(found))
        for metric, found in groups.items()
    ]


def asymmetry_chart(entries: Sequence[Asymmetry]) -> DivergingChart:
    # Room beside the axis for a bar's label ("before -1.25").
    width, left, right = WIDTH, 84.0, WIDTH - 84.0
    values = [abs(entry.mean_diff_before) for entry in entries] + [
        abs(entry.mean_diff_after) for entry in entries if entry.mean_diff_after is not None
    ]
    zero, ticks, per_unit = _scale(max(values, default=1.0), left, right)
    rows = []
    for index, entry in enumerate(entries):
        y = 34 + index * ROW
        bars = []
        for offset, label, value in (
            (8, "before", entry.mean_diff_before),
            (26, "after", entry.mean_diff_after),
        ):
            if value is None:
                continue
            x_end = zero + value * per_unit
            bars.append(
                Bar(y + offset, round(min(zero, x_end), 2), round(abs(x_end - zero), 2),
                    value, label)
            )  # fmt: skip
        rows.append(BarRow(short_region_name(entry.region), y, bars))
    height = int(34 + len(entries) * ROW + 20)
    return DivergingChart(width, height, zero, left, right, rows, ticks)


@dataclass(frozen=True)
class Interval:
    y: float
    low: float
    high: float
    point: float
    label: str
    verdict: str


@dataclass
class ForestChart:
    """Each what-works difference as a point with its 95 % interval, against a zero line."""

    width: int
    height: int
    zero: float
    left: float
    right: float
    rows: list[Interval]
    ticks: list[Tick]
    unit: str = ""


FACTORS = {"tool": "Tool", "hydration": "Water", "duration": "Length"}
FACTOR_LEVELS = {
    "hydrated": "hydrated (≥ 300 ml)",
    "not_hydrated": "not hydrated",
    "under_10_min": "under 10 min",
    "10_to_20_min": "10 to 20 min",
    "20_min_or_more": "20 min or more",
}


def level_name(factor: str, level: str) -> str:
    return f"{FACTORS.get(factor, factor)}: {FACTOR_LEVELS.get(level, level.replace('_', ' '))}"


@dataclass
class WhatWorksGroup:
    """The what-works entries of one (region, side, metric), with their chart."""

    title: str
    entries: list[WhatWorks]
    chart: ForestChart


def what_works_groups(entries: Sequence[WhatWorks]) -> list[WhatWorksGroup]:
    """One forest chart per rated metric (entries arrive grouped by metric), so that no
    chart outgrows a printed page."""
    groups: dict[tuple[str, str, str], list[WhatWorks]] = {}
    for entry in entries:
        groups.setdefault((entry.region, entry.side, entry.metric), []).append(entry)
    return [
        WhatWorksGroup(
            f"{metric_name(metric)} · {region_name(region)}, {side}",
            found,
            what_works_chart(found),
        )
        for (region, side, metric), found in groups.items()
    ]


def what_works_chart(entries: Sequence[WhatWorks]) -> ForestChart:
    width, left, right = WIDTH, 20.0, WIDTH - 20.0
    limit = max((max(abs(entry.ci95_low), abs(entry.ci95_high)) for entry in entries), default=1.0)
    zero, ticks, per_unit = _scale(limit, left, right)
    rows = [
        Interval(
            y=30 + index * 36,
            low=round(zero + entry.ci95_low * per_unit, 2),
            high=round(zero + entry.ci95_high * per_unit, 2),
            point=round(zero + entry.difference * per_unit, 2),
            label=level_name(entry.factor, entry.level),
            verdict=entry.verdict,
        )
        for index, entry in enumerate(entries)
    ]
    unit = unit_of(entries[0].metric) if entries else ""
    # Below the rows: the tick labels, then the axis title.
    return ForestChart(width, 30 + len(entries) * 36 + 28, zero, left, right, rows, ticks, unit)
