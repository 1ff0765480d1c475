"""Schemathesis hooks of the contract fuzz run (`hooks` in schemathesis.toml; see
test_contract_fuzz.py).

Every `date-time` it generates is drawn half from the whole calendar (years 1 to 9999, offsets
-23:59 to +23:59, with or without a fraction), half from its edges: the first and last two days
of the calendar at the furthest offsets, where converting to UTC overflows or leaves the range
the API accepts (0001-01-02T00:00:00Z..9999-12-30T23:59:59.999999Z). Whatever the value, the
answer must be a documented 2xx or 4xx, never a 5xx.
"""

from datetime import datetime, timedelta

import schemathesis
from hypothesis import strategies as st

MAX_OFFSET_MINUTES = 23 * 60 + 59
EDGE_DAYS = [
    datetime(1, 1, 1),
    datetime(1, 1, 2),
    datetime(9999, 12, 30),
    datetime(9999, 12, 31),
]


def _offset(minutes: int, zulu: bool) -> str:
    if minutes == 0 and zulu:
        return "Z"
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _date_time(wall: datetime, minutes: int, zulu: bool) -> str:
    # RFC 3339 requires the seconds: isoformat writes them, and a fraction only when not zero.
    return wall.isoformat() + _offset(minutes, zulu)


anywhere = st.builds(
    _date_time,
    st.datetimes(min_value=datetime.min, max_value=datetime.max),
    st.integers(-MAX_OFFSET_MINUTES, MAX_OFFSET_MINUTES),
    st.booleans(),
)
at_the_edges = st.builds(
    _date_time,
    st.builds(
        lambda day, seconds, micro: day + timedelta(seconds=seconds, microseconds=micro),
        st.sampled_from(EDGE_DAYS),
        st.sampled_from([0, 3600, 86_399]) | st.integers(0, 86_399),
        st.sampled_from([0, 999_999]),
    ),
    st.sampled_from([-MAX_OFFSET_MINUTES, -14 * 60, -60, 0, 60, 14 * 60, MAX_OFFSET_MINUTES]),
    st.booleans(),
)

schemathesis.openapi.format("date-time", st.one_of(anywhere, at_the_edges))
