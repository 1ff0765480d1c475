"""The period a figure covers: the query's `from`/`to`/`tz`/`bucket`, the contract's defaults
and limits, resolved once for summaries and whatever else publishes figures over a period."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlmodel import Session, col

from api.analytics.local_dates import utc
from api.errors import NotFound, Unprocessable
from models.timestamps import EARLIEST
from models.user import User, check_timezone

DEFAULT_PERIOD = timedelta(days=90)
MAX_PERIOD = timedelta(days=3653)  # 10 years: bounds every query and CASE
MAX_DAY_BUCKET_PERIOD = timedelta(days=1827)  # 5 years of daily buckets


@dataclass(frozen=True)
class SummaryQuery:
    started_from: datetime | None = None
    started_to: datetime | None = None
    tz: str | None = None
    bucket: str = "week"
    region: str | None = None
    metric: str | None = None


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    tz: str
    bucket: str

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86_400


def _invalid(field: str, message: str) -> Unprocessable:
    return Unprocessable(f"{field}: {message}", [{"loc": ["query", field], "msg": message}])


def resolve_period(query: SummaryQuery, account_tz: str, now: datetime) -> Period:
    """The contract's defaults, and a 422 for a period that cannot be summarised."""
    for field, value in (("from", query.started_from), ("to", query.started_to)):
        if value is not None and value.tzinfo is None:
            raise _invalid(field, "must be a timestamp with an offset")
    end = utc(query.started_to) if query.started_to is not None else now
    if query.started_from is not None:
        start = utc(query.started_from)
    else:  # `to` - 90 days, but never before the first instant a client may send
        start = end - DEFAULT_PERIOD if end - EARLIEST > DEFAULT_PERIOD else EARLIEST
    if start > end:
        raise _invalid("from", "must not be after `to`")
    if end - start > MAX_PERIOD:
        raise _invalid("from", "the period must not be longer than 10 years")
    if query.bucket == "day" and end - start > MAX_DAY_BUCKET_PERIOD:
        raise _invalid(
            "bucket", "daily buckets cover at most 5 years: use week or month for longer periods"
        )
    tz = query.tz or account_tz
    try:
        check_timezone(tz)
    except ValueError as error:
        raise _invalid("tz", str(error)) from None
    return Period(start, end, tz, query.bucket)


_TIMEZONE = select(col(User.timezone)).where(col(User.id) == bindparam("person_id"))


def person_period(db: Session, person_id: uuid.UUID, query: SummaryQuery, now: datetime) -> Period:
    """The period of `query` for this person (their time zone is the default); 404 when the
    person is gone. The one prologue of summaries and insights."""
    account_tz = db.connection().execute(_TIMEZONE, {"person_id": person_id}).scalar()
    if account_tz is None:
        raise NotFound("No such person.")
    return resolve_period(query, account_tz, now)
