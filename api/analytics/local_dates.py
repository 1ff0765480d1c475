"""Local dates of UTC timestamps in an IANA time zone, computed by the database.

Neither SQLite nor a portable SQL has time zone rules, so Python works out the zone's UTC
offsets over the period (one segment per daylight-saving change) and the query applies them
with a CASE. Days are numbered from the local date of the period's start (day 0), which keeps
every number non-negative, so integer division is floor division on both databases.
"""

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, ColumnElement, Integer, bindparam, case, cast, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

SECONDS_PER_DAY = 86_400
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
_SCAN_STEP = timedelta(hours=12)  # no zone changes its offset twice within 12 hours


class EpochSeconds(FunctionElement[int]):
    """Whole seconds since 1970-01-01 UTC of a UTC timestamp column."""

    type = BigInteger()
    inherit_cache = True


@compiles(EpochSeconds, "sqlite")
def _epoch_sqlite(element: EpochSeconds, compiler: Any, **kw: Any) -> str:
    # SQLite stores naive UTC text ('2026-11-20 06:30:00.123456'); strftime and unixepoch
    # would round the fraction up (23:59:59.9996 -> the next day), so cut it off first.
    # unixepoch (SQLite 3.38+) gives the same integer as strftime('%s') at a third less cost.
    (column,) = element.clauses
    text = f"substr({compiler.process(column, **kw)}, 1, 19)"
    if (compiler.dialect.server_version_info or (0,)) >= (3, 38):
        return f"unixepoch({text})"
    return f"CAST(strftime('%s', {text}) AS INTEGER)"


@compiles(EpochSeconds)
def _epoch_default(element: EpochSeconds, compiler: Any, **kw: Any) -> str:
    # date_part is double precision (exact for whole seconds, and floor cannot cross a second
    # at microsecond resolution); extract(epoch ...) is numeric, and slower (bench/RESULTS.md).
    (column,) = element.clauses
    return f"CAST(floor(date_part('epoch', {compiler.process(column, **kw)})) AS BIGINT)"


class EpochMicroseconds(FunctionElement[int]):
    """Microseconds since 1970-01-01 UTC of a UTC timestamp column: exact durations and gaps
    (a 9:59.9 session is under 10 minutes, which whole seconds could not tell)."""

    type = BigInteger()
    inherit_cache = True


@compiles(EpochMicroseconds, "sqlite")
def _epoch_micros_sqlite(element: EpochMicroseconds, compiler: Any, **kw: Any) -> str:
    # The text is 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds as in EpochSeconds, plus the
    # fraction's digits (an absent fraction casts to 0).
    (column,) = element.clauses
    text = compiler.process(column, **kw)
    seconds = compiler.process(EpochSeconds(column), **kw)
    return f"({seconds} * 1000000 + CAST(substr({text}, 21, 6) AS INTEGER))"


@compiles(EpochMicroseconds)
def _epoch_micros_default(element: EpochMicroseconds, compiler: Any, **kw: Any) -> str:
    # date_part's double holds a microsecond timestamp to well under half a microsecond:
    # rounding recovers the stored integer.
    (column,) = element.clauses
    return f"CAST(round(date_part('epoch', {compiler.process(column, **kw)}) * 1000000) AS BIGINT)"


def utc_offset(zone: ZoneInfo, instant: datetime) -> int:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def offset_segments(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """[(from_instant, offset_seconds)] covering start..end, the first from `start`."""
    return list(_offset_segments(zone, start, end))


@lru_cache(maxsize=256)
def _offset_segments(
    zone: ZoneInfo, start: datetime, end: datetime
) -> tuple[tuple[datetime, int], ...]:
    # Cached: a summary asks twice per request, and dashboards ask for the same period again.
    segments = [(start, utc_offset(zone, start))]
    cursor = start
    while cursor < end:
        step_end = min(cursor + _SCAN_STEP, end)
        if utc_offset(zone, step_end) != segments[-1][1]:
            # Zones change at whole seconds: find the first second with the new offset.
            low, high = math.floor(cursor.timestamp()), math.ceil(step_end.timestamp())
            while high - low > 1:
                middle = (low + high) // 2
                if utc_offset(zone, _instant(middle)) == segments[-1][1]:
                    low = middle
                else:
                    high = middle
            segments.append((_instant(high), utc_offset(zone, _instant(high))))
        cursor = step_end
    return tuple(segments)


def _instant(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class LocalCalendar:
    """The period's local calendar: day numbers, and the expression that computes them."""

    zone: ZoneInfo
    start: datetime  # UTC
    end: datetime  # UTC

    @property
    def first_date(self) -> date:
        return self.start.astimezone(self.zone).date()

    @property
    def last_date(self) -> date:
        return self.end.astimezone(self.zone).date()

    def day_number(self, instant: datetime) -> int:
        return (instant.astimezone(self.zone).date() - self.first_date).days

    @property
    def segment_count(self) -> int:
        """How many UTC offsets the period spans: the shape of `day_expression`."""
        return len(offset_segments(self.zone, self.start, self.end))

    def parameters(self) -> dict[str, Any]:
        """The values of `day_expression`'s and `weeks_since_start`'s parameters."""
        segments = offset_segments(self.zone, self.start, self.end)
        values: dict[str, Any] = {
            f"offset_{index}": offset for index, (_, offset) in enumerate(segments)
        }
        values.update(
            {f"boundary_{index}": segments[index][0] for index in range(1, len(segments))}
        )
        values["first_midnight"] = (self.first_date - date(1970, 1, 1)).days * SECONDS_PER_DAY
        values["start_epoch"] = int(self.start.timestamp())
        return values


def day_expression(started_at: Any, segment_count: int) -> ColumnElement[int]:
    """SQL: the local day number of `started_at` (0 = the local date of the period's start).

    Only the shape is fixed here (how many offset segments); the offsets, the instants where
    they change and the first midnight are parameters (LocalCalendar.parameters), so one
    statement serves every period and zone of that shape.
    """
    offset: ColumnElement[int]
    if segment_count == 1:
        offset = bindparam("offset_0", type_=Integer)
    else:
        offset = case(
            *[
                (
                    started_at < bindparam(f"boundary_{index}"),
                    bindparam(f"offset_{index - 1}", type_=Integer),
                )
                for index in range(1, segment_count)
            ],
            else_=bindparam(f"offset_{segment_count - 1}", type_=Integer),
        )
    local_seconds = EpochSeconds(started_at) + offset - bindparam("first_midnight")
    return cast(local_seconds // SECONDS_PER_DAY, Integer)


def weeks_since_start(started_at: Any) -> ColumnElement[Any]:
    """SQL: time since the period's start in weeks, the x of the baseline slope."""
    return (EpochSeconds(started_at) - bindparam("start_epoch")) / float(SECONDS_PER_WEEK)


def bucket_starts(first: date, last: date, bucket: str) -> list[date]:
    """The first local date of every bucket that first..last touches, in order."""
    # Counted, never stepped past `last`: a period may end in the calendar's last week.
    if bucket == "month":
        months = range(first.year * 12 + first.month - 1, last.year * 12 + last.month)
        return [date(month // 12, month % 12 + 1, 1) for month in months]
    if bucket == "day":
        start, step = first, 1
    else:
        start, step = first - timedelta(days=first.weekday()), 7  # ISO weeks start on Monday
    count = (last - start).days // step + 1 if last >= start else 0
    return [start + timedelta(days=index * step) for index in range(count)]


def bucket_expression(day: Any, bucket: str, bucket_count: int) -> Any:
    """SQL: the index of the bucket holding local day number `day` (see bucket_parameters)."""
    if bucket == "day":
        return day
    if bucket == "week":
        return (day + bindparam("first_weekday")) // 7
    if bucket_count == 1:
        return literal(0, Integer)
    return case(
        *[(day < bindparam(f"bucket_{index}"), index - 1) for index in range(1, bucket_count)],
        else_=bucket_count - 1,
    )


def bucket_parameters(first: date, bucket: str, starts: list[date]) -> dict[str, Any]:
    """The values of bucket_expression's parameters: the weekday of the first day, or the
    day numbers on which months 2.. begin."""
    if bucket == "week":
        return {"first_weekday": first.weekday()}
    if bucket == "month":
        return {f"bucket_{index}": (starts[index] - first).days for index in range(1, len(starts))}
    return {}


def utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC)
