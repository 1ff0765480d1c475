"""Properties over the whole datetime range (0001-01-01..9999-12-31, any microsecond) with UTC
offsets from -23:59 to +23:59, for every endpoint that takes a timestamp: a body (create,
batch, PATCH), a query (the session lists' and the summaries' `from`/`to`, own and a coach's)
and a list cursor. Whatever the value, the answer is never a 5xx; an instant inside the
accepted range behaves as any other; one outside it is a 422 (a cursor: 400) and stores nothing.

The oracle works in whole microseconds since 0001-01-01T00:00:00, where no value overflows.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from api.services.pagination import encode_cursor
from models.timestamps import EARLIEST, LATEST
from tests.conftest import Person
from tests.factories import link, session_body

# Bounded for CI; the fixtures (client, people) are shared by the examples of one test.
BOUNDED = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROBLEM = "application/problem+json"
MICROSECOND = timedelta(microseconds=1)
DEFAULT = timedelta(days=90)  # the summary's default period
MAX_OFFSET_MINUTES = 23 * 60 + 59
# The days where converting to UTC overflows or the range's margin begins.
EDGE_DAYS = [
    datetime(1, 1, 1),
    datetime(1, 1, 2),
    datetime(1, 1, 3),
    datetime(9999, 12, 29),
    datetime(9999, 12, 30),
    datetime(9999, 12, 31),
]


def _microseconds(naive: datetime) -> int:
    return (naive - datetime.min) // MICROSECOND


FIRST = _microseconds(EARLIEST.replace(tzinfo=None))
LAST = _microseconds(LATEST.replace(tzinfo=None))


@dataclass(frozen=True)
class Sent:
    """A timestamp as a client writes it, and the UTC instant it stands for when accepted."""

    text: str
    wall: datetime  # the local wall-clock time written
    offset_minutes: int

    @property
    def utc_microseconds(self) -> int:
        return _microseconds(self.wall) - self.offset_minutes * 60_000_000

    @property
    def in_range(self) -> bool:
        return FIRST <= self.utc_microseconds <= LAST

    @property
    def instant(self) -> datetime:
        assert self.in_range
        return datetime.min.replace(tzinfo=UTC) + self.utc_microseconds * MICROSECOND

    def shifted(self, delta: timedelta) -> "Sent":
        """The same offset, `delta` later on the wall clock (kept at the calendar's end)."""
        try:
            wall = self.wall + delta
        except OverflowError:
            wall = datetime.max
        return _sent(wall, self.offset_minutes)


def _offset_text(minutes: int, zulu: bool) -> str:
    if minutes == 0 and zulu:
        return "Z"
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _sent(wall: datetime, offset_minutes: int, zulu: bool = True) -> Sent:
    return Sent(wall.isoformat() + _offset_text(offset_minutes, zulu), wall, offset_minutes)


walls = st.one_of(
    st.datetimes(min_value=datetime.min, max_value=datetime.max),
    st.builds(
        lambda day, seconds, micro: day + timedelta(seconds=seconds, microseconds=micro),
        st.sampled_from(EDGE_DAYS),
        st.integers(0, 86_399),
        st.sampled_from([0, 999_999]) | st.integers(0, 999_999),
    ),
)
offsets = st.sampled_from(
    [-MAX_OFFSET_MINUTES, -14 * 60, -60, 0, 60, 14 * 60, MAX_OFFSET_MINUTES]
) | st.integers(-MAX_OFFSET_MINUTES, MAX_OFFSET_MINUTES)
timestamps = st.builds(_sent, walls, offsets, st.booleans())


def _note_range(*sent: Sent | None) -> None:
    """Hypothesis's statistics (--hypothesis-show-statistics) show both kinds are drawn."""
    event("out of range" if any(value and not value.in_range for value in sent) else "in range")


def _locs(response) -> list[list[Any]]:
    return [error["loc"] for error in response.json()["errors"]]


def _assert_problem(response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM


def _utc(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


# --- bodies ------------------------------------------------------------------------------


@st.composite
def starts_and_ends(draw: st.DrawFn) -> tuple[Sent, Sent | None]:
    started = draw(timestamps)
    ended = draw(
        st.none()
        | timestamps
        | st.integers(0, 6 * 3600).map(lambda seconds: started.shifted(timedelta(seconds=seconds)))
    )
    return started, ended


def _expected_create(started: Sent, ended: Sent | None, now: datetime) -> tuple[bool, set[str]]:
    """(accepted?, the fields an out-of-range value makes invalid)."""
    out_of_range = {
        name
        for name, sent in (("started_at", started), ("ended_at", ended))
        if sent and not sent.in_range
    }
    if out_of_range:
        return False, out_of_range
    if started.instant > now + timedelta(minutes=5):
        return False, set()
    duration = ended and ended.instant - started.instant
    if duration is not None and not timedelta(0) <= duration <= timedelta(hours=6):
        return False, set()
    return True, set()


def _create_body(started: Sent, ended: Sent | None) -> dict[str, Any]:
    return session_body(started_at=started.text, ended_at=ended and ended.text)


def _stored(client, person: Person) -> list[str]:
    response = client.get("/v1/sessions", params={"limit": 200}, headers=person.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@BOUNDED
@given(drawn=starts_and_ends())
def test_a_create_with_any_timestamps_is_201_or_422(client, alice: Person, drawn):
    started, ended = drawn
    _note_range(started, ended)
    body = _create_body(started, ended)
    before = _stored(client, alice)

    now = datetime.now(UTC)
    response = client.post("/v1/sessions", json=body, headers=alice.headers)
    event(f"answer {response.status_code}")

    accepted, out_of_range = _expected_create(started, ended, now)
    if accepted and started.instant < now:  # the 5-minute grace is not this test's subject
        assert response.status_code == 201, response.text
        stored = client.get(f"/v1/sessions/{body['id']}", headers=alice.headers).json()
        assert _utc(stored["started_at"]) == started.instant
        assert (stored["ended_at"] and _utc(stored["ended_at"])) == (ended and ended.instant)
    elif not accepted:
        _assert_problem(response, 422)
        assert {("body", name) for name in out_of_range} <= {tuple(loc) for loc in _locs(response)}
        assert _stored(client, alice) == before


@BOUNDED
@given(drawn=starts_and_ends())
def test_a_batch_item_with_any_timestamps_is_created_or_invalid(client, alice: Person, drawn):
    started, ended = drawn
    _note_range(started, ended)
    item = _create_body(started, ended)
    other = session_body()

    now = datetime.now(UTC)
    response = client.post(
        "/v1/sessions/batch", json={"sessions": [item, other]}, headers=alice.headers
    )

    assert response.status_code == 200, response.text
    result, other_result = response.json()["results"]
    event(f"item {result['status']}")
    assert other_result["status"] == "created"
    accepted, out_of_range = _expected_create(started, ended, now)
    if accepted and started.instant < now:
        assert result["status"] == "created", result
    elif not accepted:
        assert result["status"] == "invalid", result
        assert {(name,) for name in out_of_range} <= {tuple(e["loc"]) for e in result["errors"]}
        stored = client.get(f"/v1/sessions/{item['id']}", headers=alice.headers)
        assert stored.status_code == 404, stored.text


@BOUNDED
@given(field=st.sampled_from(["started_at", "ended_at"]), sent=timestamps)
def test_a_patch_with_any_timestamp_is_200_or_422(client, alice: Person, field: str, sent: Sent):
    _note_range(sent)
    body = session_body(started_at="2025-03-01T07:30:00Z", ended_at=None)
    created = client.post("/v1/sessions", json=body, headers=alice.headers)
    assert created.status_code == 201, created.text

    response = client.patch(
        f"/v1/sessions/{body['id']}", json={field: sent.text}, headers=alice.headers
    )
    event(f"answer {response.status_code}")

    assert response.status_code in (200, 422), response.text
    if not sent.in_range:
        _assert_problem(response, 422)
        assert ["body", field] in _locs(response)
    if response.status_code == 422:
        unchanged = client.get(f"/v1/sessions/{body['id']}", headers=alice.headers)
        assert unchanged.json() == created.json()
    else:
        assert _utc(response.json()[field]) == sent.instant


# --- queries and cursors -----------------------------------------------------------------


@pytest.fixture
def people(client, alice: Person, bob: Person) -> tuple[Person, Person, list[dict[str, Any]]]:
    """Alice with sessions at the first accepted instants and one recent; Bob her coach."""
    link(client, bob, alice)
    sessions = []
    for started_at in (
        "0001-01-02T00:00:00Z",
        "0001-01-02T23:59:59.999999Z",
        "2025-03-01T07:30:00Z",
    ):
        body = session_body(started_at=started_at, ended_at=None)
        created = client.post("/v1/sessions", json=body, headers=alice.headers)
        assert created.status_code == 201, created.text
        sessions.append(created.json())
    return alice, bob, sessions


def _viewer(people, coach: bool) -> tuple[Person, str]:
    alice, bob, _ = people
    return (bob, f"/v1/clients/{alice.id}") if coach else (alice, "/v1")


UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _listed_ids(response, _sessions: set[str]) -> list[str]:
    """The session ids a list answers, in its order (newest first)."""
    return [item["id"] for item in response.json()["items"]]


def _exported_ids(response, sessions: set[str]) -> list[str]:
    """The ids of `sessions` an export holds, in its order (oldest first), each once (an
    export also holds other ids: observations, the bundle, the person)."""
    found = re.findall(UUID_PATTERN, response.text)
    return [found_id for found_id in dict.fromkeys(found) if found_id in sessions]


# Every selection by `from`/`to`: the path under /v1 (or a coach's /v1/clients/{id}), extra
# query parameters, how to read the ids it holds, and whether they come newest first.
SELECTIONS = {
    "sessions": ({"limit": 200}, _listed_ids, True),
    "export.csv": ({}, _exported_ids, False),
    "export.fhir.json": ({}, _exported_ids, False),
}


@BOUNDED
@given(
    sent=timestamps,
    span_days=st.integers(0, 400),
    role=st.sampled_from(["from", "to", "both"]),
    coach=st.booleans(),
    path=st.sampled_from(sorted(SELECTIONS)),
)
def test_a_selection_by_any_from_or_to_is_200_or_422(
    people, client, sent, span_days, role, coach, path
):
    """Session lists and exports: out of range is 422 naming the parameter; in range, exactly
    the sessions started in [from, to], in the selection's order."""
    viewer, base = _viewer(people, coach)
    extra, ids_of, newest_first = SELECTIONS[path]
    params = {"from": sent, "to": sent.shifted(timedelta(days=span_days))}
    params = {name: value for name, value in params.items() if role in (name, "both")}
    _note_range(*params.values())

    response = client.get(
        f"{base}/{path}",
        params={name: value.text for name, value in params.items()} | extra,
        headers=viewer.headers,
    )
    event(f"{path} answer {response.status_code}")

    outside = [name for name, value in params.items() if not value.in_range]
    if outside:
        _assert_problem(response, 422)
        assert {("query", name) for name in outside} <= {tuple(loc) for loc in _locs(response)}
        return
    assert response.status_code == 200, response.text
    low = params["from"].instant if "from" in params else EARLIEST
    high = params["to"].instant if "to" in params else LATEST
    oldest_first = [s["id"] for s in people[2] if low <= _utc(s["started_at"]) <= high]
    expected = list(reversed(oldest_first)) if newest_first else oldest_first
    assert ids_of(response, {session["id"] for session in people[2]}) == expected


ZONES = ["UTC", "Etc/GMT-14", "Etc/GMT+12", "America/Sitka", "Asia/Manila", "America/New_York"]


@BOUNDED
@given(
    sent=timestamps,
    span_days=st.integers(0, 400),
    role=st.sampled_from(["from", "to", "both"]),
    tz=st.sampled_from(ZONES),
    bucket=st.sampled_from(["day", "week", "month"]),
    coach=st.booleans(),
    path=st.sampled_from(["summary", "insights", "report.html"]),
)
def test_a_summary_with_any_from_or_to_is_200_or_422(
    people, client, sent, span_days, role, tz, bucket, coach, path
):
    """Summaries, insights and the report page: the same period rules."""
    viewer, base = _viewer(people, coach)
    # `from` alone: `to` is now, a period longer than 10 years unless `from` is recent.
    params = {"from": sent, "to": sent.shifted(timedelta(days=span_days))}
    params = {name: value for name, value in params.items() if role in (name, "both")}
    _note_range(*params.values())

    response = client.get(
        f"{base}/{path}",
        params={name: value.text for name, value in params.items()}
        | {"tz": tz}
        | ({"bucket": bucket} if path == "summary" else {}),
        headers=viewer.headers,
    )
    event(f"{path} answer {response.status_code}")

    assert response.status_code in (200, 422), response.text
    outside = [name for name, value in params.items() if not value.in_range]
    if outside:
        _assert_problem(response, 422)
        assert {("query", name) for name in outside} <= {tuple(loc) for loc in _locs(response)}
        return
    if role == "from":  # whether the period to now is short enough is the period rules' affair
        return
    assert response.status_code == 200, response.text
    if path == "report.html":  # the page names its period's end, to the second
        shown = params["to"].instant.isoformat(timespec="seconds").replace("+00:00", "Z")
        assert f">{shown}</span> · made" in response.text
        return
    period = response.json()["period"]
    assert _utc(period["to"]) == params["to"].instant
    start = _utc(period["from"])
    if "from" in params:
        assert start == params["from"].instant
    else:  # `to` - 90 days, never before the first instant
        assert start - EARLIEST == max(timedelta(0), params["to"].instant - EARLIEST - DEFAULT)
    expected = [s for s in people[2] if start <= _utc(s["started_at"]) <= params["to"].instant]
    if path == "summary":
        assert response.json()["adherence"]["sessions"] == len(expected)


@BOUNDED
@given(sent=timestamps, coach=st.booleans())
def test_a_list_cursor_at_any_instant_is_200_or_400(people, client, sent: Sent, coach: bool):
    viewer, base = _viewer(people, coach)
    _note_range(sent)
    at = sent.wall.replace(tzinfo=timezone(timedelta(minutes=sent.offset_minutes)))
    cursor = encode_cursor(at, uuid.UUID(int=0))

    response = client.get(
        f"{base}/sessions", params={"cursor": cursor, "limit": 200}, headers=viewer.headers
    )
    event(f"answer {response.status_code}")

    if not sent.in_range:
        _assert_problem(response, 400)
        return
    assert response.status_code == 200, response.text
    # Newest first: the sessions strictly before the cursor's instant (its id is the smallest).
    expected = [s["id"] for s in reversed(people[2]) if _utc(s["started_at"]) < sent.instant]
    assert [item["id"] for item in response.json()["items"]] == expected
