"""GET /v1/summary and the coach's /v1/clients/{id}/summary against a real database.

Every expected figure is computed by hand in the comments.
"""

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import api_key, link
from tests.summary_data import log_session, rating, summary

NULL_POINT = {"sessions": 0, "mean_before": None, "mean_after": None, "mean_change": None}


def _metric(body, region, side, metric):
    matches = [
        entry
        for entry in body["metrics"]
        if (entry["region"], entry["side"], entry["metric"]) == (region, side, metric)
    ]
    assert len(matches) == 1, body["metrics"]
    return matches[0]


@pytest.fixture
def two_weeks(client, alice):
    """Five sessions in the fortnight from Monday 5 October 2026 (UTC), days 0, 1, 3, 8, 9."""
    log_session(
        client,
        alice,
        "2026-10-05T00:00:00Z",  # exactly `from`: the period is inclusive
        rating("pain", 6, 3),  # improvement 3 >= 2: responder
        rating("rom", 30, 38),  # +8 >= 5: responder
        water_before_ml=400,
        water_after_ml=350,
        felt_unwell_after=False,  # hydrated, felt fine
    )
    log_session(
        client,
        alice,
        "2026-10-06T00:00:00Z",
        rating("pain", 6.2, 4.2),  # improvement 2.0 (1.9999... in floats): responder
        rating("rom", 32, 35),  # +3 < 5: not a responder
        water_before_ml=300,
        water_after_ml=300,
        felt_unwell_after=True,  # hydrated (300 counts), unwell
    )
    log_session(
        client,
        alice,
        "2026-10-08T00:00:00+00:00",
        rating("pain", 5, 4),  # 1 < 2 and 1 < 30 % of 5 = 1.5: not a responder
        rating("rom", 34, None),  # not a pair: the session is incomplete
        water_before_ml=250,
        water_after_ml=400,
        felt_unwell_after=True,  # not hydrated, unwell
    )
    log_session(
        client,
        alice,
        "2026-10-13T02:00:00+02:00",  # = 00:00 UTC on the 13th
        rating("pain", 3, 2.1),  # 0.9 < 2 but 0.9 >= 30 % of 3 = 0.9: responder by 30 % only
        rating("mobility", 4, 7),  # higher is better: +3 >= 2, responder
        water_before_ml=500,  # water after missing: counts in no hydration figure
        felt_unwell_after=True,
    )
    log_session(
        client,
        alice,
        "2026-10-14T00:00:00Z",
        rating("pain", 4, 5),  # worse: not a responder
        water_before_ml=200,
        water_after_ml=0,  # not hydrated, did not log how it felt
    )
    return {"from": "2026-10-05T00:00:00Z", "to": "2026-10-19T00:00:00Z", "tz": "UTC"}


def test_summary_hand_computed(client, alice, two_weeks):
    body = summary(client, alice, **two_weeks)

    assert body["period"] == {
        "from": "2026-10-05T00:00:00Z",
        "to": "2026-10-19T00:00:00Z",
        "tz": "UTC",
        "bucket": "week",
    }
    # 5 sessions, 4 complete (the third has rom without after); days 0, 1, 3, 8, 9 of 14;
    # 5 / (14 / 7) = 2.5 per week; `to` is day 14 and day 13 has no session: streak 0;
    # longest run: days 0-1 or 8-9 = 2.
    assert body["adherence"] == {
        "sessions": 5,
        "complete_sessions": 4,
        "active_days": 5,
        "sessions_per_week": 2.5,
        "current_streak_days": 0,
        "longest_streak_days": 2,
        "last_session_at": "2026-10-14T00:00:00Z",
    }
    # Both amounts logged: sessions 1, 2, 3, 5 = 4; hydrated (>= 300 both): 1, 2 -> 2/4 = 0.5.
    # Unwell among hydrated with a feeling: 2 of (1, 2) -> 0.5; among not hydrated with a
    # feeling: 3 of (3) -> 1.0 (session 5 logged no feeling, session 4 lacks water after).
    assert body["hydration"] == {
        "sessions_with_water": 4,
        "hydrated_sessions": 2,
        "hydrated_rate": 0.5,
        "unwell_rate_hydrated": 0.5,
        "unwell_rate_not_hydrated": 1.0,
    }
    # Catalog order: pain, mobility, rom (all adductors, both sides).
    assert [entry["metric"] for entry in body["metrics"]] == ["pain", "mobility", "rom"]

    pain = _metric(body, "adductors", "both", "pain")
    # Pairs: 6->3, 6.2->4.2, 5->4, 3->2.1, 4->5.
    # mean_before = 24.2 / 5 = 4.84; mean_after = 18.3 / 5 = 3.66; change = -1.18;
    # improvement (lower is better) = +1.18; pct = 100 * 1.18 / 4.84 = 24.38 -> 24.4;
    # responders 3 of 5 = 0.6.
    assert {key: pain[key] for key in pain if key not in ("baseline", "series")} == {
        "region": "adductors",
        "side": "both",
        "metric": "pain",
        "better": "lower",
        "pairs": 5,
        "mean_before": 4.84,
        "mean_after": 3.66,
        "mean_change": -1.18,
        "mean_improvement": 1.18,
        "improvement_pct": 24.4,
        "responder_rate": 0.6,
    }
    # Slope of before on weeks: days d = 0, 1, 3, 8, 9 (mean 4.2), y = 6, 6.2, 5, 3, 4
    # (mean 4.84). Sxx = 17.64 + 10.24 + 1.44 + 14.44 + 23.04 = 66.8;
    # Sxy = -4.872 - 4.352 - 0.192 - 6.992 - 4.032 = -20.44; per day -20.44 / 66.8 =
    # -0.30599; per week x7 = -2.14192 -> -2.142. Fitted change over 14 days = -4.28:
    # improvement +4.28 >= 1 -> improving.
    assert pain["baseline"] == {"slope_per_week": -2.142, "trend": "improving"}
    # Week of 5 Oct: 6->3, 6.2->4.2, 5->4: before 17.2 / 3 = 5.733, after 11.2 / 3 = 3.733,
    # change -2. Week of 12 Oct: 3->2.1, 4->5: before 3.5, after 3.55, change 0.05.
    # The week of 19 Oct holds only `to`: present and empty.
    assert pain["series"] == [
        {
            "start": "2026-10-05",
            "sessions": 3,
            "mean_before": 5.73,
            "mean_after": 3.73,
            "mean_change": -2.0,
        },
        {
            "start": "2026-10-12",
            "sessions": 2,
            "mean_before": 3.5,
            "mean_after": 3.55,
            "mean_change": 0.05,
        },
        {"start": "2026-10-19", **NULL_POINT},
    ]

    rom = _metric(body, "adductors", "both", "rom")
    # Pairs 30->38, 32->35 (34->null is not a pair): before 31, after 36.5, change +5.5,
    # improvement +5.5 (higher is better), pct 100 * 5.5 / 31 = 17.74 -> 17.7; responders
    # 1 of 2 (+8 yes, +3 no).
    assert (rom["better"], rom["pairs"], rom["mean_before"], rom["mean_after"]) == (
        "higher",
        2,
        31.0,
        36.5,
    )
    assert (rom["mean_change"], rom["mean_improvement"], rom["improvement_pct"]) == (
        5.5,
        5.5,
        17.7,
    )
    assert rom["responder_rate"] == 0.5
    # Every before counts for the slope, the unpaired 34 too: days 0, 1, 3, y 30, 32, 34:
    # Sxy = 6, Sxx = 42/9, 54/42 = 1.2857 per day = 9.0 per week; fitted +18 >= 2.5: improving.
    assert rom["baseline"] == {"slope_per_week": 9.0, "trend": "improving"}
    assert rom["series"][0] == {
        "start": "2026-10-05",
        "sessions": 3,
        "mean_before": 31.0,
        "mean_after": 36.5,
        "mean_change": 5.5,
    }
    assert rom["series"][1:] == [
        {"start": "2026-10-12", **NULL_POINT},
        {"start": "2026-10-19", **NULL_POINT},
    ]

    mobility = _metric(body, "adductors", "both", "mobility")
    # One pair 4->7: change +3, improvement +3, pct 75.0, responder; one rating: no slope.
    assert (
        mobility["pairs"],
        mobility["mean_change"],
        mobility["mean_improvement"],
        mobility["improvement_pct"],
        mobility["responder_rate"],
    ) == (1, 3.0, 3.0, 75.0, 1.0)
    assert mobility["baseline"] == {"slope_per_week": None, "trend": None}
    assert [point["sessions"] for point in mobility["series"]] == [0, 1, 0]


def test_filters_narrow_metrics_and_sessions(client, alice, two_weeks):
    # metric=mobility: only session 4 rated it.
    body = summary(client, alice, metric="mobility", **two_weeks)
    assert [entry["metric"] for entry in body["metrics"]] == ["mobility"]
    assert body["adherence"]["sessions"] == 1
    # metric=rom: sessions 1, 2, 3; region=hamstrings: nothing at all.
    assert summary(client, alice, metric="rom", **two_weeks)["adherence"]["sessions"] == 3
    empty = summary(client, alice, region="hamstrings", **two_weeks)
    assert empty["metrics"] == []
    assert empty["adherence"]["sessions"] == 0


def test_worsening_and_stable_trends(client, alice):
    # Pain before 2, 3, 4 on days 0, 7, 14 of a 14-day period: slope +1/week, fitted +2 over
    # the period: improvement -2 <= -1 -> worsening.
    for day, before in ((5, 2), (12, 3), (19, 4)):
        log_session(client, alice, f"2026-10-{day:02d}T00:00:00Z", rating("pain", before, None))
    # Stiffness 5, 5.1, 5 on the same days: slope 0 -> stable.
    for day, before in ((5, 5), (12, 5.1), (19, 5)):
        log_session(
            client, alice, f"2026-10-{day:02d}T00:00:00Z", rating("stiffness", before, None)
        )
    body = summary(client, alice, **{"from": "2026-10-05T00:00:00Z", "to": "2026-10-19T00:00:00Z"})
    pain = _metric(body, "adductors", "both", "pain")
    assert pain["baseline"] == {"slope_per_week": 1.0, "trend": "worsening"}
    # No after anywhere: pairs 0 and every mean null, but the metric is listed.
    assert (pain["pairs"], pain["mean_before"], pain["responder_rate"]) == (0, None, None)
    assert pain["improvement_pct"] is None
    assert [point["sessions"] for point in pain["series"]] == [1, 1, 1]
    assert [point["mean_before"] for point in pain["series"]] == [None, None, None]
    stiffness = _metric(body, "adductors", "both", "stiffness")
    assert stiffness["baseline"] == {"slope_per_week": 0.0, "trend": "stable"}


def test_sides_are_separate_metrics(client, alice):
    log_session(
        client,
        alice,
        "2026-10-05T08:00:00Z",
        rating("pain", 6, 2, side="left"),
        rating("pain", 4, 4, side="right"),
    )
    body = summary(client, alice, **{"from": "2026-10-05T00:00:00Z", "to": "2026-10-06T00:00:00Z"})
    # Sides in catalog order: left, right.
    assert [(entry["side"], entry["mean_change"]) for entry in body["metrics"]] == [
        ("left", -4.0),
        ("right", 0.0),
    ]


def test_empty_period_has_zero_counts_and_nulls(client, alice):
    log_session(client, alice, "2026-09-01T08:00:00Z")  # outside the period
    body = summary(client, alice, **{"from": "2026-10-01T00:00:00Z", "to": "2026-10-15T00:00:00Z"})
    assert body["adherence"] == {
        "sessions": 0,
        "complete_sessions": 0,
        "active_days": 0,
        "sessions_per_week": 0.0,  # 0 / 2 weeks
        "current_streak_days": 0,
        "longest_streak_days": 0,
        "last_session_at": None,
    }
    assert body["hydration"] == {
        "sessions_with_water": 0,
        "hydrated_sessions": 0,
        "hydrated_rate": None,
        "unwell_rate_hydrated": None,
        "unwell_rate_not_hydrated": None,
    }
    assert body["metrics"] == []


def test_zero_length_period(client, alice):
    log_session(client, alice, "2026-10-05T08:00:00Z")
    instant = "2026-10-05T08:00:00Z"
    body = summary(client, alice, **{"from": instant, "to": instant, "bucket": "day"})
    # One session in a period of 0 days: no rate per week, one bucket, a 1-day streak.
    assert body["adherence"]["sessions"] == 1
    assert body["adherence"]["sessions_per_week"] is None
    assert body["adherence"]["current_streak_days"] == 1
    assert [point["start"] for point in body["metrics"][0]["series"]] == ["2026-10-05"]


def test_streak_counts_from_the_day_before_when_to_has_no_session(client, alice):
    # Sessions on 1-4 November (a 4-day run) and 7, 8, 9 November.
    for day in (1, 2, 3, 4, 7, 8, 9):
        log_session(client, alice, f"2026-11-{day:02d}T09:00:00Z")
    period = {"from": "2026-10-20T00:00:00Z", "to": "2026-11-10T12:00:00Z", "tz": "UTC"}
    adherence = summary(client, alice, **period)["adherence"]
    # 10 November has no session yet: count back from the 9th: 9, 8, 7 = 3.
    assert (adherence["current_streak_days"], adherence["longest_streak_days"]) == (3, 4)
    # A session on the 10th itself extends it to 4.
    log_session(client, alice, "2026-11-10T07:00:00Z")
    adherence = summary(client, alice, **period)["adherence"]
    assert (adherence["current_streak_days"], adherence["longest_streak_days"]) == (4, 4)
    # Seen from the 12th, the 11th has no session either: the streak is broken.
    later = {**period, "to": "2026-11-12T12:00:00Z"}
    assert summary(client, alice, **later)["adherence"]["current_streak_days"] == 0


def test_late_evening_utc_is_the_next_day_in_berlin_summer(client, alice):
    # 23:30 UTC on 14 July = 01:30 CEST on 15 July.
    log_session(client, alice, "2026-07-14T23:30:00Z")
    period = {"from": "2026-07-14T00:00:00+02:00", "to": "2026-07-16T00:00:00+02:00"}
    berlin = summary(client, alice, tz="Europe/Berlin", bucket="day", **period)
    assert [(p["start"], p["sessions"]) for p in berlin["metrics"][0]["series"]] == [
        ("2026-07-14", 0),
        ("2026-07-15", 1),
        ("2026-07-16", 0),
    ]
    # In UTC the same session is on the 14th; the period starts at 22:00 UTC on the 13th.
    utc = summary(client, alice, tz="UTC", bucket="day", **period)
    assert [(p["start"], p["sessions"]) for p in utc["metrics"][0]["series"]] == [
        ("2026-07-13", 0),
        ("2026-07-14", 1),
        ("2026-07-15", 0),
    ]


def test_week_spanning_the_autumn_clock_change_is_one_bucket(client, alice):
    # Clocks go back at 01:00 UTC on Sunday 25 October 2026. The ISO week Monday 19 - Sunday
    # 25 October is 169 hours long in Berlin and still one bucket.
    log_session(client, alice, "2026-10-19T00:30:00+02:00")  # Monday 19th, local (18th UTC)
    log_session(client, alice, "2026-10-25T23:30:00+01:00")  # Sunday 25th, after the change
    log_session(client, alice, "2026-10-25T23:30:00Z")  # 00:30 CET on Monday 26th
    period = {"from": "2026-10-19T00:00:00+02:00", "to": "2026-10-27T00:00:00+01:00"}
    weekly = summary(client, alice, tz="Europe/Berlin", **period)
    assert [(p["start"], p["sessions"]) for p in weekly["metrics"][0]["series"]] == [
        ("2026-10-19", 2),
        ("2026-10-26", 1),
    ]
    assert weekly["adherence"]["active_days"] == 3  # 19th, 25th, 26th
    daily = summary(client, alice, tz="Europe/Berlin", bucket="day", **period)
    series = daily["metrics"][0]["series"]
    assert len(series) == 9  # 19 .. 27 October
    assert [p["start"] for p in series if p["sessions"]] == [
        "2026-10-19",
        "2026-10-25",
        "2026-10-26",
    ]


def test_sessions_in_two_time_zones_follow_the_summary_tz(client, make_person):
    traveller = make_person("Traveller", timezone="Asia/Tokyo")
    # Logged in New York: 23:30 EDT on 10 September = 03:30 UTC on the 11th.
    log_session(client, traveller, "2026-09-10T23:30:00-04:00")
    # Logged in Tokyo: 08:00 JST on 11 September = 23:00 UTC on the 10th.
    log_session(client, traveller, "2026-09-11T08:00:00+09:00")
    period = {"from": "2026-09-09T00:00:00Z", "to": "2026-09-13T00:00:00Z", "bucket": "day"}

    def active(tz=None):
        params = {**period, **({"tz": tz} if tz else {})}
        body = summary(client, traveller, **params)
        days = [p["start"] for p in body["metrics"][0]["series"] if p["sessions"]]
        return body["period"]["tz"], body["adherence"]["active_days"], days

    # UTC: the 11th (New York) and the 10th (Tokyo) are two days.
    assert active("UTC") == ("UTC", 2, ["2026-09-10", "2026-09-11"])
    # New York: 23:30 on the 10th and 19:00 on the 10th: one day.
    assert active("America/New_York") == ("America/New_York", 1, ["2026-09-10"])
    # Default = the account's zone, Tokyo: 12:30 and 08:00 on the 11th: one day.
    assert active() == ("Asia/Tokyo", 1, ["2026-09-11"])


def test_month_buckets(client, alice):
    log_session(client, alice, "2026-01-20T12:00:00Z", rating("pain", 6, 4))
    log_session(client, alice, "2026-01-31T23:30:00Z", rating("pain", 5, 4))  # 1 Feb in Berlin
    log_session(client, alice, "2026-03-01T00:30:00Z", rating("pain", 4, 4))
    period = {"from": "2026-01-15T00:00:00Z", "to": "2026-03-10T00:00:00Z", "bucket": "month"}
    utc = summary(client, alice, tz="UTC", **period)["metrics"][0]["series"]
    # UTC: January 6->4 and 5->4 (before 5.5, after 4, change -1.5); March 4->4.
    assert utc == [
        {
            "start": "2026-01-01",
            "sessions": 2,
            "mean_before": 5.5,
            "mean_after": 4.0,
            "mean_change": -1.5,
        },
        {"start": "2026-02-01", **NULL_POINT},
        {
            "start": "2026-03-01",
            "sessions": 1,
            "mean_before": 4.0,
            "mean_after": 4.0,
            "mean_change": 0.0,
        },
    ]
    berlin = summary(client, alice, tz="Europe/Berlin", **period)["metrics"][0]["series"]
    assert [(p["start"], p["sessions"]) for p in berlin] == [
        ("2026-01-01", 1),
        ("2026-02-01", 1),
        ("2026-03-01", 1),
    ]


def test_defaults(client, make_person):
    person = make_person("Default", timezone="Europe/Berlin")
    now = datetime.now(UTC)
    log_session(client, person, (now - timedelta(days=89)).isoformat())
    log_session(client, person, (now - timedelta(days=91)).isoformat())  # outside 90 days
    body = summary(client, person)
    period = body["period"]
    start = datetime.fromisoformat(period["from"])
    end = datetime.fromisoformat(period["to"])
    assert end - start == timedelta(days=90)
    assert abs(end - now) < timedelta(minutes=5)
    assert (period["tz"], period["bucket"]) == ("Europe/Berlin", "week")
    assert body["adherence"]["sessions"] == 1
    # 90 days touch 13 or 14 ISO weeks; the series has one entry for each.
    assert len(body["metrics"][0]["series"]) in (13, 14, 15)
    # Only `to`: `from` is 90 days before it.
    body = summary(client, person, to="2026-10-01T00:00:00Z")
    assert body["period"]["from"] == "2026-07-03T00:00:00Z"


def test_deleted_sessions_do_not_count(client, alice):
    kept = log_session(client, alice, "2026-10-05T08:00:00Z", rating("pain", 6, 4))
    gone = log_session(client, alice, "2026-10-06T08:00:00Z", rating("pain", 2, 8))
    assert client.delete(f"/v1/sessions/{gone}", headers=alice.headers).status_code == 204
    body = summary(client, alice, **{"from": "2026-10-01T00:00:00Z", "to": "2026-10-10T00:00:00Z"})
    assert body["adherence"]["sessions"] == 1
    assert body["metrics"][0]["mean_change"] == -2.0
    assert kept


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-10-10T00:00:00Z", "to": "2026-10-01T00:00:00Z"}, "from"),
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"region": "elbow"}, "region"),
        ({"metric": "grip_strength"}, "metric"),
        ({"bucket": "year"}, "bucket"),
        ({"from": "2026-10-01T00:00:00"}, "from"),  # naive
        ({"to": "yesterday"}, "to"),
        # 6 years of daily buckets is too many; 11 years is too long for any bucket.
        (
            {"from": "2020-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "bucket": "day"},
            "bucket",
        ),
        (
            {"from": "2015-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "bucket": "month"},
            "from",
        ),
    ],
)
def test_bad_parameters_are_422(client, alice, params, field):
    response = client.get("/v1/summary", params=params, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert problem["detail"]
    assert any(error["loc"][-1] == field for error in problem["errors"]), problem


def test_long_periods_that_are_allowed(client, alice):
    # 4 years of days and 9 years of months are fine.
    days = {"from": "2022-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "bucket": "day"}
    months = {"from": "2017-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "bucket": "month"}
    log_session(client, alice, "2025-12-31T12:00:00Z")
    assert len(summary(client, alice, **days)["metrics"][0]["series"]) == 1462
    assert len(summary(client, alice, **months)["metrics"][0]["series"]) == 109


def test_summary_needs_authentication(client):
    response = client.get("/v1/summary")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_summary_privacy(client, alice, bob):
    log_session(client, alice, "2026-10-05T08:00:00Z", rating("pain", 6, 3))
    period = {"from": "2026-10-01T00:00:00Z", "to": "2026-10-10T00:00:00Z"}
    # Bob's own summary never includes Alice's sessions.
    own = summary(client, bob, **period)
    assert own["adherence"]["sessions"] == 0
    assert own["metrics"] == []
    # Bob is not Alice's coach: her summary is 404, exactly like an unknown person.
    for person_id in (alice.id, "00000000-0000-4000-8000-000000000000"):
        response = client.get(
            f"/v1/clients/{person_id}/summary", params=period, headers=bob.headers
        )
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
    # With a live grant from Alice, Bob reads the same summary Alice sees.
    granted = link(client, bob, alice)
    path = f"/v1/clients/{alice.id}/summary"
    coach_view = summary(client, bob, path, **period)
    assert coach_view == summary(client, alice, **period)
    assert coach_view["adherence"]["sessions"] == 1
    # A coach's API key needs both summaries:read and clients:read.
    for scopes, status in (
        (["summaries:read"], 404),
        (["clients:read"], 403),
        (["summaries:read", "clients:read"], 200),
    ):
        headers, _ = api_key(client, bob, *scopes)
        assert client.get(path, params=period, headers=headers).status_code == status
    # The grant is one way: Alice may not read Bob's.
    response = client.get(f"/v1/clients/{bob.id}/summary", headers=alice.headers)
    assert response.status_code == 404
    # Once Alice revokes the grant, her summary is 404 for Bob at once.
    revoked = client.delete(f"/v1/grants/{granted['id']}", headers=alice.headers)
    assert revoked.status_code == 204
    assert client.get(path, params=period, headers=bob.headers).status_code == 404


def test_api_key_needs_the_summaries_scope(client, alice):
    created = client.post(
        "/v1/api-keys",
        json={"name": "sessions only", "scopes": ["sessions:read"]},
        headers=alice.headers,
    )
    assert created.status_code == 201, created.text
    headers = {"X-API-Key": created.json()["key"]}
    assert client.get("/v1/summary", headers=headers).status_code == 403
    summaries_key = client.post(
        "/v1/api-keys",
        json={"name": "summaries", "scopes": ["summaries:read"]},
        headers=alice.headers,
    ).json()["key"]
    assert client.get("/v1/summary", headers={"X-API-Key": summaries_key}).status_code == 200


def test_openapi_documents_the_summary(client):
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/summary"]["get"]
    assert {"401", "403", "404", "422"} <= set(operation["responses"])
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert names == {"from", "to", "tz", "bucket", "region", "metric"}
    assert "/v1/clients/{client_id}/summary" in schema["paths"]


# --- the corrected responder rule and exact thresholds -------------------------------------


def test_responders_must_improve_and_thresholds_are_exact(client, alice):
    period = {"from": "2026-10-05T00:00:00Z", "to": "2026-10-12T00:00:00Z"}
    # Pain (mcid_abs 2, mcid_pct 30 %), one pair per session:
    #   0 -> 0: improvement 0; 30 % of 0 is 0, but it is not positive: not a responder.
    #   10 -> 7: improvement 3 = 30 % of 10 exactly (and >= 2): responder.
    #   2 -> 1.4: improvement 0.6 = 30 % of 2 exactly (compared in tenths: 6 * 1000 >=
    #     300 * 20, with no binary rounding of 2 - 1.4 or 0.3 * 2): responder.
    #   9.7 -> 7.8: 1.9 < 2 and < 30 % of 9.7 = 2.91: not a responder.
    #   5.1 -> 3.1: exactly 2 = mcid_abs (1.9999999999999996 in floats): responder.
    # Responders 3 of 5 = 0.6.
    for day, before, after in ((5, 0, 0), (6, 10, 7), (7, 2, 1.4), (8, 9.7, 7.8), (9, 5.1, 3.1)):
        log_session(client, alice, f"2026-10-{day:02d}T08:00:00Z", rating("pain", before, after))
    # Range of motion (mcid_abs 5, no percentage rule): 0 -> 0 not a responder, 30 -> 35
    # responder, 35.1 -> 40 (+4.9) not: 1 of 3 = 0.333.
    for day, before, after in ((5, 0, 0), (6, 30, 35), (7, 35.1, 40)):
        log_session(
            client,
            alice,
            f"2026-10-{day:02d}T09:00:00Z",
            rating("rom", before, after, region="hamstrings"),
        )
    body = summary(client, alice, **period)
    assert _metric(body, "adductors", "both", "pain")["responder_rate"] == 0.6
    assert _metric(body, "hamstrings", "both", "rom")["responder_rate"] == 0.333


def test_hydrated_is_exactly_300_ml_or_more(client, alice):
    period = {"from": "2026-10-05T00:00:00Z", "to": "2026-10-12T00:00:00Z"}
    # 300/300 hydrated; 299.9/300 and 300/299.9 not; 300.1/3000 hydrated: 2 of 4 = 0.5.
    for day, water_before, water_after in ((5, 300, 300), (6, 299.9, 300), (7, 300, 299.9)):
        log_session(
            client,
            alice,
            f"2026-10-{day:02d}T08:00:00Z",
            water_before_ml=water_before,
            water_after_ml=water_after,
        )
    log_session(client, alice, "2026-10-08T08:00:00Z", water_before_ml=300.1, water_after_ml=3000)
    hydration = summary(client, alice, **period)["hydration"]
    assert (hydration["sessions_with_water"], hydration["hydrated_sessions"]) == (4, 2)
    assert hydration["hydrated_rate"] == 0.5


def test_nobody_reads_their_own_summary_as_their_client(client, alice):
    # /v1/clients/{id}/... is a coach's view: one's own id is 404 like any id without a grant.
    response = client.get(f"/v1/clients/{alice.id}/summary", headers=alice.headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
