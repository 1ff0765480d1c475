"""The instants a client may send: the one accepted range, and `Timestamp`, the type of every
timestamp in a request body or query (list cursors check the same range when decoded).

The range keeps one day of margin inside what Python's `datetime` holds (years 1 to 9999):
an offset moves a wall-clock time of 0001-01-01 or 9999-12-31 outside that calendar once
converted to UTC, and so does a time zone's local date of an instant on its first or last day
(the tz database's local mean times reach about ±16 hours), which summaries compute in any
zone and a PostgreSQL session in any `TimeZone` does when it returns a timestamp. With the
margin, every accepted instant converts, is stored, read back and summarised without leaving
the calendar; anything outside it is a 422, never an `OverflowError`.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=UTC)
RANGE = "0001-01-02T00:00:00Z to 9999-12-30T23:59:59.999999Z"
OUT_OF_RANGE = f"must be from {RANGE} once converted to UTC"

# RFC 3339 date-time (seconds required, offset required). Pydantic alone would also take
# "0.5" or "1700000000" as Unix time, which the contract does not allow.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def utc_instant(value: datetime) -> datetime:
    """The aware `value` in UTC; a ValueError (a 422 from a model) outside the accepted range."""
    try:
        converted = value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before year 1 in UTC
        raise ValueError(OUT_OF_RANGE) from None
    if not EARLIEST <= converted <= LATEST:
        raise ValueError(OUT_OF_RANGE)
    return converted


def _require_string(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp string with an offset")
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_require_string),
    AfterValidator(utc_instant),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": f"RFC 3339 with an offset, from {RANGE} once converted to UTC "
            "(outside: 422).",
        }
    ),
]
