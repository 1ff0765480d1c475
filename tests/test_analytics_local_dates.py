"""The local-date helpers: a zone's UTC offsets over a period, and the series' bucket starts."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from api.analytics.local_dates import bucket_starts, offset_segments


def test_offset_segments_follow_berlin_clock_changes():
    segments = offset_segments(
        ZoneInfo("Europe/Berlin"),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    # CET (+1 h) until 29 March 01:00 UTC, CEST (+2 h) until 25 October 01:00 UTC.
    assert segments == [
        (datetime(2026, 1, 1, tzinfo=UTC), 3600),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 7200),
        (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 3600),
    ]
    assert offset_segments(
        ZoneInfo("UTC"), datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    ) == [(datetime(2026, 1, 1, tzinfo=UTC), 0)]


@pytest.mark.parametrize(
    ("first", "last", "bucket", "expected"),
    [
        (date(2026, 10, 5), date(2026, 10, 7), "day", ["10-05", "10-06", "10-07"]),
        # Wednesday 7 Oct .. Monday 19 Oct: the weeks of Monday 5, 12 and 19 October.
        (date(2026, 10, 7), date(2026, 10, 19), "week", ["10-05", "10-12", "10-19"]),
        (date(2026, 1, 15), date(2026, 3, 1), "month", ["01-01", "02-01", "03-01"]),
        (date(2026, 12, 31), date(2027, 1, 1), "month", ["12-01", "01-01"]),
        (date(2026, 10, 7), date(2026, 10, 7), "week", ["10-05"]),
    ],
)
def test_bucket_starts(first, last, bucket, expected):
    assert [start.strftime("%m-%d") for start in bucket_starts(first, last, bucket)] == expected
