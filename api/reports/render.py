"""The report as HTML (Jinja2, autoescaped) and as PDF (WeasyPrint, the same HTML, no browser).

Numbers are printed as /v1/summary and /v1/insights publish them (`number`); rates may be
shown as percentages with one decimal (`percent`: 0.667 -> 66.7 %).
"""

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import weasyprint
from weasyprint.urls import URLFetcher

from api.analytics.report import ReportFigures
from api.reports import charts
from models.insights import SafetyItem

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "reports"
_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
    auto_reload=False,  # templates ship with the package: no stat() per render
)


NONE = "\u2013"  # an en dash for a null figure


def number(value: float | int | None) -> str:
    """A figure exactly as the JSON publishes it; a dash for null."""
    if value is None:
        return NONE
    return str(value)


def percent(rate: float | None) -> str:
    """A rate as a percentage with one decimal (0.667 -> '66.7 %')."""
    if rate is None:
        return NONE
    return f"{rate * 100:.1f} %"


def long_date(day: date) -> str:
    return f"{day.day} {charts.MONTH_NAMES[day.month - 1]} {day.year}"


def medium_date(day: date) -> str:
    return f"{charts.short_date(day)} {day.year}"


@dataclass(frozen=True)
class MonthRow:
    month: str
    days: int
    active: int


def _month_rows(first: date, last: date, active: list[date]) -> list[MonthRow]:
    """Days in the period and days with a session, per month (the calendar's table)."""
    days: Counter[tuple[int, int]] = Counter()
    for ordinal in range(first.toordinal(), last.toordinal() + 1):
        day = date.fromordinal(ordinal)
        days[(day.year, day.month)] += 1
    sessions = Counter((day.year, day.month) for day in active)
    return [
        MonthRow(f"{charts.MONTH_NAMES[month - 1]} {year}", count, sessions[(year, month)])
        for (year, month), count in days.items()
    ]


def _by_session(items: list[SafetyItem]) -> list[list[SafetyItem]]:
    """The safety items (ordered by session) as one list per session."""
    return [list(group) for _, group in groupby(items, key=lambda item: item.session_id)]


def render_html(report: ReportFigures) -> str:
    summary = report.summary
    zone = ZoneInfo(summary.period.tz)
    first = summary.period.from_.astimezone(zone).date()
    last = summary.period.to.astimezone(zone).date()

    def local(instant: datetime) -> str:
        moment = instant.astimezone(zone)
        return f"{long_date(moment.date())}, {moment:%H:%M}"

    def instant(moment: datetime) -> str:
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")

    template = _environment.get_template("report.html")
    return template.render(
        report=report,
        summary=summary,
        insights=report.insights,
        first=first,
        last=last,
        made_at=local(report.made_at),
        local=local,
        instant=instant,
        long_date=long_date,
        medium_date=medium_date,
        number=number,
        percent=percent,
        charts=charts,
        weekly_charts=[charts.weekly_chart(metric) for metric in summary.metrics],
        calendars=charts.calendar_charts(first, last, report.active_dates),
        months=_month_rows(first, last, report.active_dates),
        asymmetry=charts.asymmetry_groups(report.insights.asymmetry),
        what_works=charts.what_works_groups(report.insights.what_works),
        safety_sessions=_by_session(report.insights.safety.items),
    )


def render_link_not_found(message: str) -> str:
    """The page of an unknown, revoked or expired share link."""
    return _environment.get_template("link_not_found.html").render(message=message)


def render_pdf(html: str) -> bytes:
    """The same page as an A4 PDF with selectable text, by WeasyPrint (no browser)."""
    # The page has no external resource; should one ever appear, no protocol is allowed, so
    # nothing is fetched (WeasyPrint logs a warning and leaves it out).
    fetcher = URLFetcher(allowed_protocols=frozenset())
    return weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
