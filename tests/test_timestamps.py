"""Timestamps at the edges of the calendar (issue 17): every instant a client sends, in a body,
a query or a cursor, is accepted inside 0001-01-02T00:00:00Z..9999-12-30T23:59:59.999999Z and
refused with a 422 (a cursor: 400) outside it, never a 500. The properties over the whole
datetime range are in test_timestamps_property.py; these are the cases of the issue, the
boundaries, and the summary's computations at both ends of the calendar."""

import time
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from api.analytics.local_dates import bucket_starts
from api.services.pagination import encode_cursor
from models.timestamps import EARLIEST, LATEST, utc_instant
from tests.conftest import Person
from tests.factories import link, session_body

PROBLEM = "application/problem+json"
# The zones that move an instant furthest from UTC, and ones with daylight saving far ahead.
EXTREME_ZONES = [
    "UTC",
    "Etc/GMT-14",  # +14:00
    "Etc/GMT+12",  # -12:00
    "Pacific/Kiritimati",
    "America/Sitka",  # +14:58 local mean time before 1867
    "Asia/Manila",  # -15:56 local mean time before 1845
    "America/New_York",
    "Europe/Berlin",
]


def _assert_422(response, *loc: str | int) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 422
    assert list(loc) in [error["loc"] for error in problem["errors"]], problem
    assert "0001-01-02T00:00:00Z" in problem["detail"], problem


def _ids(client, person: Person) -> list[str]:
    response = client.get("/v1/sessions", params={"limit": 200}, headers=person.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# --- the cases of the issue --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [("from", "0001-01-01T00:00:00+01:00"), ("to", "9999-12-31T23:59:59-01:00")],
)
def test_a_session_list_filter_outside_the_calendar_is_422(client, alice: Person, name, value):
    response = client.get("/v1/sessions", params={name: value}, headers=alice.headers)
    _assert_422(response, "query", name)


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "0001-01-01T23:59:59Z"]
)
def test_a_summary_from_in_year_1_before_the_range_is_422(client, alice: Person, value):
    response = client.get(
        "/v1/summary", params={"from": value, "to": "0001-03-01T00:00:00Z"}, headers=alice.headers
    )
    _assert_422(response, "query", "from")


def test_a_list_cursor_in_year_1_at_plus_14_is_400(client, alice: Person):
    at = datetime(1, 1, 1, 5, 0, tzinfo=timezone(timedelta(hours=14)))
    cursor = encode_cursor(at, uuid.uuid4())

    response = client.get("/v1/sessions", params={"cursor": cursor}, headers=alice.headers)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "Malformed cursor."


def test_a_create_starting_in_year_1_before_the_range_is_422(client, alice: Person):
    body = session_body(started_at="0001-01-01T00:00:00+01:00", ended_at=None)

    _assert_422(client.post("/v1/sessions", json=body, headers=alice.headers), "body", "started_at")
    assert _ids(client, alice) == []


def test_a_create_ending_after_the_calendar_is_422(client, alice: Person):
    body = session_body(ended_at="9999-12-31T23:59:59-14:00")

    _assert_422(client.post("/v1/sessions", json=body, headers=alice.headers), "body", "ended_at")
    assert _ids(client, alice) == []


# --- every other door a timestamp comes in by --------------------------------------------


def test_a_batch_item_outside_the_range_is_invalid_and_the_others_are_created(
    client, alice: Person
):
    bad = session_body(started_at="0001-01-01T00:00:00+01:00", ended_at=None)
    good = session_body()

    response = client.post(
        "/v1/sessions/batch", json={"sessions": [bad, good]}, headers=alice.headers
    )

    assert response.status_code == 200, response.text
    invalid, created = response.json()["results"]
    assert invalid["status"] == "invalid"
    assert ["started_at"] in [error["loc"] for error in invalid["errors"]]
    assert created == {"id": good["id"], "status": "created"}
    assert _ids(client, alice) == [good["id"]]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("started_at", "0001-01-01T12:00:00+14:00"),
        ("ended_at", "9999-12-31T23:59:59-14:00"),
        ("started_at", "9999-12-31T00:00:00Z"),
    ],
)
def test_a_patch_outside_the_range_is_422_and_changes_nothing(client, alice: Person, field, value):
    body = session_body()
    created = client.post("/v1/sessions", json=body, headers=alice.headers).json()

    response = client.patch(
        f"/v1/sessions/{body['id']}", json={field: value}, headers=alice.headers
    )

    _assert_422(response, "body", field)
    assert client.get(f"/v1/sessions/{body['id']}", headers=alice.headers).json() == created


def test_a_coachs_views_refuse_the_same_timestamps(client, alice: Person, bob: Person):
    link(client, bob, alice)
    base = f"/v1/clients/{alice.id}"
    cursor = encode_cursor(
        datetime(9999, 12, 31, 20, tzinfo=timezone(-timedelta(hours=5))), uuid.uuid4()
    )

    listed = client.get(
        f"{base}/sessions", params={"from": "0001-01-01T00:00:00+01:00"}, headers=bob.headers
    )
    paged = client.get(f"{base}/sessions", params={"cursor": cursor}, headers=bob.headers)
    summarised = client.get(
        f"{base}/summary", params={"to": "9999-12-31T23:59:59-01:00"}, headers=bob.headers
    )

    _assert_422(listed, "query", "from")
    assert paged.status_code == 400, paged.text
    _assert_422(summarised, "query", "to")


# --- the boundaries ----------------------------------------------------------------------


def test_utc_instant_accepts_the_range_and_nothing_outside():
    plus_one = timezone(timedelta(hours=1))
    assert utc_instant(EARLIEST) == EARLIEST
    assert utc_instant(LATEST) == LATEST
    assert utc_instant(datetime(1, 1, 2, 1, tzinfo=plus_one)) == EARLIEST
    for outside in (
        EARLIEST - timedelta(microseconds=1),
        LATEST + timedelta(microseconds=1),
        datetime(1, 1, 1, tzinfo=plus_one),  # before year 1 in UTC: OverflowError inside
        datetime.max.replace(tzinfo=timezone(-timedelta(hours=23, minutes=59))),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=23, minutes=59))),
    ):
        with pytest.raises(ValueError, match="0001-01-02T00:00:00Z"):
            utc_instant(outside)


def test_sessions_at_the_first_instant_round_trip_and_list(client, alice: Person):
    # 0001-01-01T23:00:00-01:00 is 0001-01-02T00:00:00Z, the first instant accepted.
    first = session_body(started_at="0001-01-01T23:00:00-01:00", ended_at="0001-01-02T06:00:00Z")
    created = client.post("/v1/sessions", json=first, headers=alice.headers)
    assert created.status_code == 201, created.text
    assert created.json()["started_at"] == "0001-01-02T00:00:00Z"
    assert created.json()["ended_at"] == "0001-01-02T06:00:00Z"
    second = session_body(started_at="0001-01-02T00:00:00.000001Z", ended_at=None)
    assert client.post("/v1/sessions", json=second, headers=alice.headers).status_code == 201

    everything = client.get(
        "/v1/sessions",
        params={"from": "0001-01-02T00:00:00Z", "to": "9999-12-30T23:59:59.999999Z", "limit": 1},
        headers=alice.headers,
    )
    assert everything.status_code == 200, everything.text
    assert [item["id"] for item in everything.json()["items"]] == [second["id"]]
    following = client.get(
        "/v1/sessions",
        params={"cursor": everything.json()["next_cursor"], "limit": 1},
        headers=alice.headers,
    )
    assert [item["id"] for item in following.json()["items"]] == [first["id"]]
    assert following.json()["next_cursor"] is None

    moved = client.patch(
        f"/v1/sessions/{first['id']}",
        json={"started_at": "0001-01-02T00:00:00+00:00"},
        headers=alice.headers,
    )
    assert moved.status_code == 200, moved.text


@pytest.mark.parametrize("bucket", ["day", "week", "month"])
@pytest.mark.parametrize("tz", EXTREME_ZONES)
def test_summaries_at_both_ends_of_the_calendar(client, alice: Person, tz, bucket):
    for started_at in ("0001-01-02T00:00:00Z", "0001-01-02T13:00:00Z", "0001-01-09T23:59:59Z"):
        body = session_body(started_at=started_at, ended_at=None)
        assert client.post("/v1/sessions", json=body, headers=alice.headers).status_code == 201
    # The longest period each bucket allows, at either end of the range.
    years = 5 if bucket == "day" else 10
    periods = [
        ("0001-01-02T00:00:00Z", f"{1 + years:04d}-01-01T00:00:00Z"),
        (f"{9999 - years:04d}-12-31T00:00:00Z", "9999-12-30T23:59:59.999999Z"),
        ("9999-12-30T23:59:59.999999Z", "9999-12-30T23:59:59.999999Z"),
    ]
    for started_from, started_to in periods:
        response = client.get(
            "/v1/summary",
            params={"from": started_from, "to": started_to, "tz": tz, "bucket": bucket},
            headers=alice.headers,
        )
        assert response.status_code == 200, (started_from, response.text)
        assert response.json()["period"]["to"] == started_to
    first_years = client.get(
        "/v1/summary",
        params={"from": periods[0][0], "to": periods[0][1], "tz": tz, "bucket": bucket},
        headers=alice.headers,
    ).json()
    assert first_years["adherence"]["sessions"] == 3
    assert first_years["metrics"][0]["pairs"] == 3


def test_a_summary_to_near_the_first_instant_defaults_from_to_the_first_instant(
    client, alice: Person
):
    response = client.get(
        "/v1/summary", params={"to": "0001-02-01T00:00:00Z"}, headers=alice.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["period"]["from"] == "0001-01-02T00:00:00Z"


@pytest.mark.parametrize("bucket", ["day", "week", "month"])
def test_a_summary_over_nearly_the_whole_calendar_is_a_quick_422(client, alice: Person, bucket):
    started = time.monotonic()
    response = client.get(
        "/v1/summary",
        params={"from": "0002-01-01T00:00:00Z", "to": "9998-12-31T00:00:00Z", "bucket": bucket},
        headers=alice.headers,
    )

    assert response.status_code == 422, response.text
    assert "10 years" in response.json()["detail"]
    assert time.monotonic() - started < 2


def test_bucket_starts_never_step_past_the_calendar():
    last = date(9999, 12, 31)
    assert bucket_starts(date(9999, 12, 25), last, "day")[-1] == last
    assert bucket_starts(date(9999, 12, 25), last, "week")[-1] == date(9999, 12, 27)
    assert bucket_starts(date(9999, 11, 15), last, "month") == [
        date(9999, 11, 1),
        date(9999, 12, 1),
    ]
    assert bucket_starts(date(1, 1, 1), date(1, 1, 9), "week") == [date(1, 1, 1), date(1, 1, 8)]


def test_the_schema_documents_the_range(client):
    document = client.get("/openapi.json").json()
    created = document["components"]["schemas"]["SessionCreate"]["properties"]["started_at"]
    summary_from = next(
        parameter
        for parameter in document["paths"]["/v1/summary"]["get"]["parameters"]
        if parameter["name"] == "from"
    )
    for schema in (created, summary_from["schema"]["anyOf"][0]):
        assert "0001-01-02T00:00:00Z to 9999-12-30T23:59:59.999999Z" in schema["description"]
    assert EARLIEST.isoformat() == "0001-01-02T00:00:00+00:00"
    assert LATEST == datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=UTC)
