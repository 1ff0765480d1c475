"""GET /v1/insights and the coach's /v1/clients/{id}/insights against a real database.

Every expected figure is computed by hand in the comments. The last test is a property test of
the SQL layer against a plain Python reading of the contract.
"""

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from statistics import variance

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.analytics.insight_figures import t_quantile_975
from tests.factories import api_key, link
from tests.summary_data import log_session, rating, summary

PERIOD = {"from": "2026-10-05T00:00:00Z", "to": "2026-10-19T00:00:00Z", "tz": "UTC"}


def insights(client, person, path="/v1/insights", **params):
    return summary(client, person, path, **{**PERIOD, **params})


def _entry(entries, **fields):
    matches = [entry for entry in entries if all(entry[k] == v for k, v in fields.items())]
    assert len(matches) == 1, entries
    return matches[0]


# --- carry-over --------------------------------------------------------------------------


def test_carry_over_hand_computed(client, alice):
    log_session(
        client,
        alice,
        "2026-10-05T00:00:00Z",  # exactly `from`
        rating("pain", 6, 3),
        rating("rom", 30, 38, side="left"),
        rating("mobility", 5, 4, region="calves"),
    )
    log_session(
        client,
        alice,
        "2026-10-06T12:00:00Z",
        rating("pain", 5, 2),
        rating("rom", 33, 40, side="left"),
        rating("mobility", 4, 4, region="calves"),
    )
    log_session(client, alice, "2026-10-07T12:00:00Z", rating("pain", 4, None))
    log_session(
        client,
        alice,
        "2026-10-10T12:00:00Z",
        rating("pain", 5, 5),
        rating("rom", 36, 41, side="left"),
    )
    log_session(
        client,
        alice,
        "2026-10-11T00:00:00Z",
        rating("pain", 4, 3),
        rating("mobility", 6, 7, region="calves"),
    )
    log_session(client, alice, "2026-10-04T23:59:59Z", rating("pain", 9, 0))  # before `from`
    log_session(client, alice, "2026-10-19T00:00:01Z", rating("pain", 0, 9))  # after `to`
    body = insights(client, alice)

    # Lower is better. Pain: 6->3, 5->2, 4->-, 5->5, 4->3.
    # (1, 2): relief 6 - 3 = 3, rebound 5 - 3 = 2, gap 1.5 days
    # (2, 3): relief 3, rebound 4 - 2 = 2, gap 1 day
    # (3, 4): no interval: the 7 October rating has no after
    # (4, 5): relief 0, rebound 4 - 5 = -1, gap 0.5 days
    # relief 6 / 3 = 2, rebound 3 / 3 = 1, retention 100 x (2 - 1) / 2 = 50; median of
    # (0.5, 1, 1.5) = 1 (odd count).
    assert _entry(body["carry_over"], metric="pain") == {
        "region": "adductors",
        "side": "both",
        "metric": "pain",
        "better": "lower",
        "intervals": 3,
        "mean_relief": 2.0,
        "mean_rebound": 1.0,
        "retention_pct": 50.0,
        "median_gap_days": 1.0,
    }
    # Higher is better. Rom (left): 30->38, 33->40, 36->41.
    # (1, 2): relief 8, rebound -(33 - 38) = 5, gap 1.5; (2, 4): relief 7, rebound
    # -(36 - 40) = 4, gap 4. Relief 7.5, rebound 4.5, retention 100 x 3 / 7.5 = 40;
    # median of (1.5, 4) = 2.75 (even count).
    assert _entry(body["carry_over"], metric="rom") == {
        "region": "adductors",
        "side": "left",
        "metric": "rom",
        "better": "higher",
        "intervals": 2,
        "mean_relief": 7.5,
        "mean_rebound": 4.5,
        "retention_pct": 40.0,
        "median_gap_days": 2.75,
    }
    # Mobility (calves): 5->4, 4->4, 6->7. (1, 2): relief -1, rebound -(4 - 4) = 0, gap 1.5;
    # (2, 5): relief 0, rebound -(6 - 4) = -2, gap 4.5. Relief -0.5 (not > 0: retention
    # null), rebound -1, median (1.5 + 4.5) / 2 = 3.
    assert _entry(body["carry_over"], metric="mobility") == {
        "region": "calves",
        "side": "both",
        "metric": "mobility",
        "better": "higher",
        "intervals": 2,
        "mean_relief": -0.5,
        "mean_rebound": -1.0,
        "retention_pct": None,
        "median_gap_days": 3.0,
    }
    # The summary's order: region, side (left, right, both), metric, as in the catalog.
    assert [(e["region"], e["metric"]) for e in body["carry_over"]] == [
        ("adductors", "rom"),
        ("adductors", "pain"),
        ("calves", "mobility"),
    ]


def test_carry_over_needs_an_interval_and_orders_by_session_id_on_ties(client, alice):
    # One rating only, and two ratings whose first has no after: no interval, no entry.
    log_session(client, alice, "2026-10-06T00:00:00Z", rating("pain", 6, 3, region="calves"))
    log_session(client, alice, "2026-10-06T00:00:00Z", rating("rom", 30, None))
    log_session(client, alice, "2026-10-07T00:00:00Z", rating("rom", 35, 40))
    # Two sessions at the same instant: the one with the smaller id comes first.
    first, second = sorted([uuid.uuid4(), uuid.uuid4()], key=str)
    for session_id, value in ((second, (4, 1)), (first, (7, 5))):
        response = client.post(
            "/v1/sessions",
            json={
                "id": str(session_id),
                "started_at": "2026-10-08T08:00:00Z",
                "ratings": [rating("pain", *value, region="glutes")],
            },
            headers=alice.headers,
        )
        assert response.status_code == 201, response.text
    body = insights(client, alice)
    # glutes: first 7->5, then 4->1: relief 2, rebound 4 - 5 = -1, gap 0 days;
    # retention 100 x (2 + 1) / 2 = 150 (above 100: the symptom came back below the after).
    assert body["carry_over"] == [
        {
            "region": "glutes",
            "side": "both",
            "metric": "pain",
            "better": "lower",
            "intervals": 1,
            "mean_relief": 2.0,
            "mean_rebound": -1.0,
            "retention_pct": 150.0,
            "median_gap_days": 0.0,
        }
    ]


def test_median_gap_rounds_from_microseconds(client, alice):
    log_session(client, alice, "2026-10-06T00:00:00Z", rating("pain", 6, 3))
    # 8 hours = 1/3 day -> 0.33
    log_session(client, alice, "2026-10-06T08:00:00Z", rating("pain", 6, 3))
    # 10:48 plus 0.5 s after that: 0.45 days + 0.5 s = 0.4500058 -> 0.45; median of
    # (0.3333, 0.4500058) = 0.3916696 -> 0.39
    log_session(client, alice, "2026-10-06T18:48:00.500000Z", rating("pain", 6, 3))
    body = insights(client, alice)
    assert body["carry_over"][0]["median_gap_days"] == 0.39
    assert body["carry_over"][0]["retention_pct"] == 0.0  # relief 3, rebound 3


# --- asymmetry ---------------------------------------------------------------------------


def test_asymmetry_hand_computed(client, alice):
    sides = {"region": "hamstrings"}
    log_session(
        client,
        alice,
        "2026-10-05T00:00:00Z",
        rating("pain", 6, 4, side="left", **sides),
        rating("pain", 3, 2, side="right", **sides),
        rating("rom", 50, 52, side="left", **sides),
        rating("rom", 40, 45, side="right", **sides),
        rating("mobility", 6.1, None, side="left", **sides),
        rating("mobility", 4.1, None, side="right", **sides),
        rating("pain", 3, 3, side="left", region="calves"),
        rating("pain", 4.9, 3, side="right", region="calves"),
        rating("stiffness", 5, 3, side="left", region="calves"),  # no right: not listed
        rating("stiffness", 5, 3, side="both", region="calves"),
    )
    log_session(
        client,
        alice,
        "2026-10-12T00:00:00Z",
        rating("pain", 5, None, side="left", **sides),
        rating("pain", 3, 2, side="right", **sides),
        rating("rom", 46, None, side="left", **sides),
        rating("rom", 42, None, side="right", **sides),
    )
    log_session(
        client,
        alice,
        "2026-10-19T00:00:00Z",  # exactly `to`
        rating("pain", 4.5, 3, side="left", **sides),
        rating("pain", 3, 3, side="right", **sides),
    )
    body = insights(client, alice)
    assert [(e["region"], e["metric"]) for e in body["asymmetry"]] == [
        ("hamstrings", "pain"),
        ("hamstrings", "mobility"),
        ("hamstrings", "rom"),
        ("calves", "pain"),
    ]
    # Pain (lower is better): diff_before 6 - 3 = 3, 5 - 3 = 2, 4.5 - 3 = 1.5 -> 6.5 / 3 =
    # 2.1667 -> 2.17; diff_after 4 - 2 = 2, (none), 3 - 3 = 0 -> 1.0. Weeks 0, 1, 2: mean 1,
    # y mean 2.1667; Sxy = -1 x 0.8333 + 1 x -0.6667 = -1.5, Sxx = 2: slope -0.75 per week.
    # |2.17| >= 2 and left is higher: left is worse.
    assert _entry(body["asymmetry"], region="hamstrings", metric="pain") == {
        "region": "hamstrings",
        "metric": "pain",
        "better": "lower",
        "sessions": 3,
        "mean_diff_before": 2.17,
        "mean_diff_after": 1.0,
        "slope_per_week": -0.75,
        "worse_side": "left",
    }
    # Rom (higher is better): diff_before 10 and 4 -> 7 >= 5, left higher: right is worse;
    # diff_after 52 - 45 = 7 (the second session has no afters). 2 sessions: no slope.
    assert _entry(body["asymmetry"], metric="rom") == {
        "region": "hamstrings",
        "metric": "rom",
        "better": "higher",
        "sessions": 2,
        "mean_diff_before": 7.0,
        "mean_diff_after": 7.0,
        "slope_per_week": None,
        "worse_side": "right",
    }
    # Mobility: 6.1 - 4.1 = 2.0 exactly (1.9999999999999996 in floats) reaches mcid 2;
    # higher is better and left is higher: right is worse. No afters: mean_diff_after null.
    assert _entry(body["asymmetry"], metric="mobility") == {
        "region": "hamstrings",
        "metric": "mobility",
        "better": "higher",
        "sessions": 1,
        "mean_diff_before": 2.0,
        "mean_diff_after": None,
        "slope_per_week": None,
        "worse_side": "right",
    }
    # Calves pain: 3 - 4.9 = -1.9, |1.9| < 2: no worse side; after 3 - 3 = 0.
    assert _entry(body["asymmetry"], region="calves") == {
        "region": "calves",
        "metric": "pain",
        "better": "lower",
        "sessions": 1,
        "mean_diff_before": -1.9,
        "mean_diff_after": 0.0,
        "slope_per_week": None,
        "worse_side": None,
    }


def test_asymmetry_slope_needs_a_spread_in_time(client, alice):
    for _ in range(3):
        log_session(
            client,
            alice,
            "2026-10-06T00:00:00Z",
            rating("pain", 5, 3, side="left"),
            rating("pain", 4, 3, side="right"),
        )
    [entry] = insights(client, alice)["asymmetry"]
    assert entry["sessions"] == 3
    assert entry["slope_per_week"] is None  # three sessions at one instant


# --- what works --------------------------------------------------------------------------


def _timed(started, minutes=None, until=None):
    start = datetime.fromisoformat(started)
    fields = {}
    if until is not None:
        fields["ended_at"] = until
    elif minutes is not None:
        fields["ended_at"] = (start + timedelta(minutes=minutes)).isoformat()
    return fields


def test_what_works_hand_computed(client, alice):
    # Pain (lower is better), improvement = before - after:
    # w1 ball, 7->3 = 4, 300/300 hydrated, exactly 10:00 -> 10_to_20_min
    # w2 ball, 6->3 = 3, 300/299.9 not hydrated, 9:59.999999 -> under_10_min
    # w3 ball, 8->3 = 5, 400/400 hydrated, exactly 20:00 -> 20_min_or_more
    # w4 foam_roller, 4->3 = 1, 350/300 hydrated, 19:59.9 -> 10_to_20_min
    # w5 foam_roller, 3->3 = 0, 0/500 not hydrated, 5:00 -> under_10_min
    # w6 foam_roller, 5->3 = 2, no water (no hydration level), no ended_at (no duration)
    # w7 no tool, 3->4 = -1, 300/300 hydrated, 30:00 -> 20_min_or_more
    # w8 no tool, 5->3 = 2, 299.9/300 not hydrated, 0:00 -> under_10_min
    # plus a session whose pain has no after: no pair, in no group.
    day = "2026-10-{:02d}T07:00:00+00:00"
    sessions = [
        (6, 7, 3, "ball", (300, 300), _timed(day.format(6), 10)),
        (7, 6, 3, "ball", (300, 299.9), _timed(day.format(7), until="2026-10-07T07:09:59.999999Z")),
        (8, 8, 3, "ball", (400, 400), _timed(day.format(8), 20)),
        (9, 4, 3, "foam_roller", (350, 300), _timed(day.format(9), until="2026-10-09T07:19:59.9Z")),
        (10, 3, 3, "foam_roller", (0, 500), _timed(day.format(10), 5)),
        (11, 5, 3, "foam_roller", (None, None), {}),
        (12, 3, 4, None, (300, 300), _timed(day.format(12), 30)),
        (13, 5, 3, None, (299.9, 300), _timed(day.format(13), 0)),
        (14, 5, None, "ball", (300, 300), _timed(day.format(14), 15)),
    ]
    for date, before, after, tool, (water_before, water_after), ended in sessions:
        fields = {**ended}
        if tool is not None:
            fields["tool"] = tool
        if water_before is not None:
            fields["water_before_ml"] = water_before
            fields["water_after_ml"] = water_after
        log_session(client, alice, day.format(date), rating("pain", before, after), **fields)
    body = insights(client, alice)

    # tool: ball (4, 3, 5) mean 4, s^2 1; foam_roller (1, 0, 2) mean 1, s^2 1 (w7, w8 have
    # no tool). se = sqrt(1/3 + 1/3) = 0.816497; df = (2/3)^2 / ((1/3)^2/2 x 2) = 4;
    # t(0.975, 4) = 2.776445; margin 2.266958. Ball: 3 +- 2.266958 = [0.733, 5.267]: better.
    # Catalog order of tools: foam_roller before ball.
    # hydration: hydrated (w1 4, w3 5, w4 1, w7 -1) n 4, mean 2.25, s^2 22.75/3 = 7.5833;
    # not (w2 3, w5 0, w8 2) n 3, mean 1.6667, s^2 (42/9)/2 = 2.3333. se^2 = 1.895833 +
    # 0.777778 = 2.673611, se 1.635118; df = 2.673611^2 / (1.895833^2/3 + 0.777778^2/2)
    # = 4.7638; t = 2.609398; margin 4.266674: 0.5833 -> [-3.683, 4.850]: unclear.
    # duration: under 10 (w2 3, w5 0, w8 2) vs 10 to 20 (w1, w4) and 20 or more (w3, w7):
    # the mirror of hydration. 10_to_20_min and 20_min_or_more have 2 pairs each: not listed
    # (and would have 3 if 10:00 or 20:00 fell on the wrong side).
    comparison = {
        "region": "adductors",
        "side": "both",
        "metric": "pain",
        "better": "lower",
    }
    assert body["what_works"] == [
        {
            **comparison,
            "factor": "tool",
            "level": "foam_roller",
            "n": 3,
            "mean_improvement": 1.0,
            "rest_n": 3,
            "rest_mean_improvement": 4.0,
            "difference": -3.0,
            "ci95_low": -5.27,
            "ci95_high": -0.73,
            "verdict": "worse",
        },
        {
            **comparison,
            "factor": "tool",
            "level": "ball",
            "n": 3,
            "mean_improvement": 4.0,
            "rest_n": 3,
            "rest_mean_improvement": 1.0,
            "difference": 3.0,
            "ci95_low": 0.73,
            "ci95_high": 5.27,
            "verdict": "better",
        },
        {
            **comparison,
            "factor": "hydration",
            "level": "hydrated",
            "n": 4,
            "mean_improvement": 2.25,
            "rest_n": 3,
            "rest_mean_improvement": 1.67,
            "difference": 0.58,
            "ci95_low": -3.68,
            "ci95_high": 4.85,
            "verdict": "unclear",
        },
        {
            **comparison,
            "factor": "hydration",
            "level": "not_hydrated",
            "n": 3,
            "mean_improvement": 1.67,
            "rest_n": 4,
            "rest_mean_improvement": 2.25,
            "difference": -0.58,
            "ci95_low": -4.85,
            "ci95_high": 3.68,
            "verdict": "unclear",
        },
        {
            **comparison,
            "factor": "duration",
            "level": "under_10_min",
            "n": 3,
            "mean_improvement": 1.67,
            "rest_n": 4,
            "rest_mean_improvement": 2.25,
            "difference": -0.58,
            "ci95_low": -4.85,
            "ci95_high": 3.68,
            "verdict": "unclear",
        },
    ]


def test_what_works_with_no_spread_has_both_bounds_at_the_difference(client, alice):
    # Mobility (higher is better): ball +2, +2, +2 (5.1 -> 7.1 is +2.0 exactly, though
    # 1.9999999999999996 in floats); hands +1, +1, +1. No spread: se = 0, both bounds =
    # the difference: ball +1 (better), hands -1 (worse).
    for index, (tool, before, after) in enumerate(
        [("ball", 3, 5), ("ball", 4, 6), ("ball", 5.1, 7.1), ("hands", 3, 4)]
        + [("hands", 2, 3)] * 2
    ):
        log_session(
            client,
            alice,
            f"2026-10-{6 + index:02d}T07:00:00Z",
            rating("mobility", before, after),
            tool=tool,
        )
    body = insights(client, alice)
    ball = _entry(body["what_works"], level="ball")
    assert (ball["difference"], ball["ci95_low"], ball["ci95_high"], ball["verdict"]) == (
        1.0,
        1.0,
        1.0,
        "better",
    )
    hands = _entry(body["what_works"], level="hands")
    assert (hands["difference"], hands["ci95_low"], hands["ci95_high"], hands["verdict"]) == (
        -1.0,
        -1.0,
        -1.0,
        "worse",
    )


# --- safety ------------------------------------------------------------------------------


def test_safety_hand_computed(client, alice):
    first = log_session(
        client,
        alice,
        "2026-10-06T00:00:00Z",
        rating("pain", 3, 5),  # improvement -2 <= -2: worse, worsening 2
        rating("pain", 3, 4, side="left"),  # -1: not worse
        rating("rom", 40, 35, side="left"),  # higher is better: -5 <= -5, worse
        rating("rom", 40, 35.1, side="right"),  # -4.9: not worse
    )
    second = log_session(
        client,
        alice,
        "2026-10-08T00:00:00Z",
        rating("pain", 3.1, 5.1),  # -2.0 exactly (floats: 1.9999999999999996): worse
        rating("mobility", 2.3, 0.3),  # -2.0 exactly (floats: -1.9999999999999998): worse
        rating("stiffness", 3, None),  # no after: never worse
    )
    log_session(client, alice, "2026-10-09T00:00:00Z", rating("pain", 5, 3.1))  # better
    body = insights(client, alice)
    assert body["safety"] == {
        "flagged_sessions": 2,
        "items": [
            {
                "session_id": second,
                "started_at": "2026-10-08T00:00:00Z",
                "region": "adductors",
                "side": "both",
                "metric": "pain",
                "before": 3.1,
                "after": 5.1,
                "worsening": 2.0,
            },
            {
                "session_id": second,
                "started_at": "2026-10-08T00:00:00Z",
                "region": "adductors",
                "side": "both",
                "metric": "mobility",
                "before": 2.3,
                "after": 0.3,
                "worsening": 2.0,
            },
            {
                "session_id": first,
                "started_at": "2026-10-06T00:00:00Z",
                "region": "adductors",
                "side": "both",
                "metric": "pain",
                "before": 3.0,
                "after": 5.0,
                "worsening": 2.0,
            },
            {
                "session_id": first,
                "started_at": "2026-10-06T00:00:00Z",
                "region": "adductors",
                "side": "left",
                "metric": "rom",
                "before": 40.0,
                "after": 35.0,
                "worsening": 5.0,
            },
        ],
    }


def test_safety_lists_100_and_counts_every_flagged_session(client, alice):
    start = datetime(2026, 10, 5, tzinfo=UTC)
    sessions = [
        {
            "id": str(uuid.uuid4()),
            "started_at": (start + timedelta(hours=2 * index)).isoformat(),
            # two worse ratings per session: 2 x 103 = 206 worse ratings, 103 sessions
            "ratings": [rating("pain", 2, 6), rating("stiffness", 1, 9)],
        }
        for index in range(103)
    ]
    response = client.post("/v1/sessions/batch", json={"sessions": sessions}, headers=alice.headers)
    assert response.status_code == 200, response.text
    safety = insights(client, alice)["safety"]
    assert safety["flagged_sessions"] == 103
    assert len(safety["items"]) == 100
    started = [item["started_at"] for item in safety["items"]]
    assert started == sorted(started, reverse=True)
    # The newest 50 sessions, two items each.
    assert started[0] == "2026-10-13T12:00:00Z"  # 5 October + 2 x 102 hours
    assert started[-1] == "2026-10-09T10:00:00Z"  # 5 October + 2 x 53 hours (session 53)


# --- filters, period, access -------------------------------------------------------------


def test_filters_narrow_every_figure(client, alice):
    for day in (6, 7):
        log_session(
            client,
            alice,
            f"2026-10-{day:02d}T00:00:00Z",
            rating("pain", 3, 5, side="left"),
            rating("pain", 4, 6, side="right"),
            rating("rom", 40, 30, side="left"),
            rating("rom", 40, 30, side="right"),
            rating("pain", 3, 5, side="left", region="calves"),
            rating("pain", 3, 5, side="right", region="calves"),
        )
    everything = insights(client, alice)
    assert len(everything["carry_over"]) == 6
    assert len(everything["asymmetry"]) == 3
    assert len(everything["safety"]["items"]) == 12
    assert everything["safety"]["flagged_sessions"] == 2

    pain = insights(client, alice, metric="pain")
    assert {e["metric"] for e in pain["carry_over"] + pain["asymmetry"]} == {"pain"}
    assert len(pain["carry_over"]) == 4
    assert len(pain["safety"]["items"]) == 8

    calves = insights(client, alice, region="calves", metric="pain")
    assert {(e["region"], e["side"]) for e in calves["carry_over"]} == {
        ("calves", "left"),
        ("calves", "right"),
    }
    assert [(e["region"], e["metric"]) for e in calves["asymmetry"]] == [("calves", "pain")]
    assert len(calves["safety"]["items"]) == 4
    assert insights(client, alice, region="neck")["safety"] == {
        "flagged_sessions": 0,
        "items": [],
    }


def test_period_bounds_are_inclusive(client, alice):
    log_session(client, alice, "2026-10-04T23:59:59.999999Z", rating("pain", 3, 9))
    inside = log_session(client, alice, "2026-10-05T00:00:00Z", rating("pain", 3, 5))
    last = log_session(client, alice, "2026-10-19T00:00:00Z", rating("pain", 3, 5))
    log_session(client, alice, "2026-10-19T00:00:00.000001Z", rating("pain", 3, 9))
    body = insights(client, alice)
    assert body["period"] == PERIOD
    assert [item["session_id"] for item in body["safety"]["items"]] == [last, inside]
    # Only the two sessions in the period make an interval: relief -2, rebound 3 - 5 = -2,
    # 14 days apart.
    assert body["carry_over"][0]["intervals"] == 1
    assert body["carry_over"][0]["median_gap_days"] == 14.0


def test_empty_period_and_defaults(client, make_person):
    person = make_person("Tz", timezone="Europe/Berlin")
    response = client.get("/v1/insights", headers=person.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"]["tz"] == "Europe/Berlin"
    start = datetime.fromisoformat(body["period"]["from"])
    end = datetime.fromisoformat(body["period"]["to"])
    assert end - start == timedelta(days=90)
    assert body["carry_over"] == body["asymmetry"] == body["what_works"] == []
    assert body["safety"] == {"flagged_sessions": 0, "items": []}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-10-05T00:00:00"}, "from"),
        ({"from": "2026-10-19T00:00:00Z", "to": "2026-10-05T00:00:00Z"}, "from"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"region": "elbow"}, "region"),
        ({"metric": "joy"}, "metric"),
        ({"from": "2010-01-01T00:00:00Z", "to": "2026-10-05T00:00:00Z"}, "from"),
    ],
)
def test_bad_parameters_are_422(client, alice, params, field):
    response = client.get("/v1/insights", params=params, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in str(response.json()["errors"])


def test_insights_need_authentication_and_the_scope(client, alice):
    assert client.get("/v1/insights").status_code == 401
    headers, _ = api_key(client, alice, "sessions:read")
    assert client.get("/v1/insights", headers=headers).status_code == 403
    headers, _ = api_key(client, alice, "summaries:read")
    assert client.get("/v1/insights", headers=headers).status_code == 200


def test_coach_access(client, alice, bob):
    log_session(client, alice, "2026-10-06T00:00:00Z", rating("pain", 3, 5))
    log_session(client, alice, "2026-10-07T00:00:00Z", rating("pain", 6, 3))
    path = f"/v1/clients/{alice.id}/insights"
    # No grant yet: 404, like a person who does not exist.
    assert client.get(path, params=PERIOD, headers=bob.headers).status_code == 404
    missing = f"/v1/clients/{uuid.uuid4()}/insights"
    assert client.get(missing, params=PERIOD, headers=bob.headers).status_code == 404
    # Nobody is their own client.
    own = f"/v1/clients/{alice.id}/insights"
    assert client.get(own, params=PERIOD, headers=alice.headers).status_code == 404

    granted = link(client, bob, alice)
    assert insights(client, bob, path) == insights(client, alice)
    assert insights(client, bob, path)["safety"]["flagged_sessions"] == 1
    # The grant is one way.
    reverse = f"/v1/clients/{bob.id}/insights"
    assert client.get(reverse, params=PERIOD, headers=alice.headers).status_code == 404
    # An API key needs summaries:read and clients:read.
    headers, _ = api_key(client, bob, "summaries:read")
    assert client.get(path, params=PERIOD, headers=headers).status_code == 403
    headers, _ = api_key(client, bob, "summaries:read", "clients:read")
    assert client.get(path, params=PERIOD, headers=headers).status_code == 200

    revoked = client.delete(f"/v1/grants/{granted['id']}", headers=alice.headers)
    assert revoked.status_code == 204
    assert client.get(path, params=PERIOD, headers=bob.headers).status_code == 404


def test_openapi_documents_the_insights(client):
    schema = client.get("/openapi.json").json()
    for path in ("/v1/insights", "/v1/clients/{client_id}/insights"):
        operation = schema["paths"][path]["get"]
        assert {"200", "401", "403", "404", "422"} <= set(operation["responses"])
    components = schema["components"]["schemas"]
    what_works = components["WhatWorks"]
    assert set(what_works["required"]) == set(what_works["properties"])
    assert what_works["properties"]["verdict"]["enum"] == ["better", "worse", "unclear"]
    assert what_works["properties"]["factor"]["enum"] == ["tool", "hydration", "duration"]
    carry_over = components["CarryOver"]
    assert set(carry_over["required"]) == set(carry_over["properties"])
    asymmetry = components["Asymmetry"]
    assert {"enum": ["left", "right"], "type": "string"} in asymmetry["properties"]["worse_side"][
        "anyOf"
    ]
    assert set(components["Safety"]["required"]) == {"flagged_sessions", "items"}


# --- property: the SQL layer against plain Python ----------------------------------------

PROPERTY_FROM = datetime(2026, 3, 1, tzinfo=UTC)
PROPERTY_TO = datetime(2026, 3, 15, tzinfo=UTC)
KEYS = [
    ("adductors", "left", "pain"),
    ("adductors", "right", "pain"),
    ("adductors", "both", "rom"),
    ("calves", "left", "mobility"),
    ("calves", "right", "mobility"),
]
LIMITS = {"pain": 100, "rom": 1800, "mobility": 100}  # in tenths
DIRECTION = {"pain": -1, "rom": 1, "mobility": 1}
MCID = {"pain": 2, "rom": 5, "mobility": 2}
LEVELS = {
    "tool": ["foam_roller", "ball", "peanut_ball", "stick", "percussion", "hands", "other"],
    "hydration": ["hydrated", "not_hydrated"],
    "duration": ["under_10_min", "10_to_20_min", "20_min_or_more"],
}


def _half_up(value: Fraction, places: int) -> float:
    scaled = abs(value) * 10**places
    rounded = int(scaled + Fraction(1, 2))
    return float(Fraction(rounded if value >= 0 else -rounded, 10**places))


@st.composite
def property_sessions(draw):
    count = draw(st.integers(0, 20))
    sessions = []
    for _ in range(count):
        keys = draw(st.lists(st.sampled_from(KEYS), min_size=2, max_size=5, unique=True))
        ratings = []
        for region, side, metric in keys:
            before = draw(st.integers(0, LIMITS[metric]))
            # small values make worse ratings, ties and equal levels likely
            # mostly pairs, so that levels reach the 3 pairs what_works needs
            after = draw(
                st.sampled_from([None, 0, 1, 2]).flatmap(
                    lambda kind, before=before, limit=LIMITS[metric]: (
                        st.none()
                        if kind is None
                        else st.integers(max(0, before - 40), min(limit, before + 40))
                    )
                )
            )
            ratings.append((region, side, metric, before, after))
        sessions.append(
            {
                # minutes on a coarse grid (ties) and a day either side of the period
                "minute": draw(st.integers(-1, 15)) * 1440 + draw(st.sampled_from([0, 1, 719])),
                "tool": draw(st.sampled_from([None, "ball", "foam_roller", "hands"])),
                "water": draw(st.none() | st.tuples(*[st.sampled_from([0, 2999, 3000, 4000])] * 2)),
                "duration_s": draw(st.none() | st.sampled_from([0, 599, 600, 1199, 1200, 3600])),
                "ratings": ratings,
            }
        )
    return sessions


def _expected(sessions):
    inside = [
        session for session in sessions if PROPERTY_FROM <= session["started_at"] <= PROPERTY_TO
    ]
    inside.sort(key=lambda session: (session["started_at"], session["id"]))
    by_key = defaultdict(list)
    for session in inside:
        for region, side, metric, before, after in session["ratings"]:
            by_key[(region, side, metric)].append((session, before, after))

    carry_over = {}
    for key, ratings in by_key.items():
        direction = DIRECTION[key[2]]
        intervals = [
            (
                direction * (prev[2] - prev[1]),
                -direction * (nxt[1] - prev[2]),
                (nxt[0]["started_at"] - prev[0]["started_at"]) / timedelta(microseconds=1),
            )
            for prev, nxt in pairwise(ratings)
            if prev[2] is not None
        ]
        if not intervals:
            continue
        relief = Fraction(sum(i[0] for i in intervals), 10 * len(intervals))
        rebound = Fraction(sum(i[1] for i in intervals), 10 * len(intervals))
        gaps = sorted(int(i[2]) for i in intervals)
        middle = len(gaps) // 2
        median = (
            Fraction(gaps[middle])
            if len(gaps) % 2
            else Fraction(gaps[middle - 1] + gaps[middle], 2)
        )
        carry_over[key] = {
            "intervals": len(intervals),
            "mean_relief": _half_up(relief, 2),
            "mean_rebound": _half_up(rebound, 2),
            "retention_pct": _half_up(100 * (relief - rebound) / relief, 1) if relief > 0 else None,
            "median_gap_days": _half_up(median / (86_400 * 10**6), 2),
        }

    asymmetry = {}
    for region, metric in {(k[0], k[2]) for k in by_key}:
        rows = []
        for session in inside:
            values = {r[1]: r for r in session["ratings"] if (r[0], r[2]) == (region, metric)}
            if "left" in values and "right" in values:
                rows.append((values["left"], values["right"]))
        if not rows:
            continue
        diff_before = Fraction(sum(left[3] - right[3] for left, right in rows), 10 * len(rows))
        afters = [
            left[4] - right[4]
            for left, right in rows
            if left[4] is not None and right[4] is not None
        ]
        asymmetry[(region, metric)] = {
            "sessions": len(rows),
            "mean_diff_before": _half_up(diff_before, 2),
            "mean_diff_after": _half_up(Fraction(sum(afters), 10 * len(afters)), 2)
            if afters
            else None,
        }

    what_works = {}
    for key, ratings in by_key.items():
        direction = DIRECTION[key[2]]
        for factor, levels in LEVELS.items():
            groups = defaultdict(list)
            for session, before, after in ratings:
                if after is None:
                    continue
                level = session[factor]
                if level is not None:
                    groups[level].append(direction * (after - before))
            for level in levels:
                mine = groups.get(level, [])
                rest = [v for other, values in groups.items() if other != level for v in values]
                if len(mine) >= 3 and len(rest) >= 3:
                    what_works[(*key, factor, level)] = (mine, rest)

    worse = [
        (session, rating)
        for session in inside
        for rating in session["ratings"]
        if rating[4] is not None
        and DIRECTION[rating[2]] * (rating[4] - rating[3]) <= -10 * MCID[rating[2]]
    ]
    return carry_over, asymmetry, what_works, worse


def _level(session, factor):
    if factor == "tool":
        return session["tool"]
    if factor == "hydration":
        if session["water"] is None:
            return None
        return "hydrated" if min(session["water"]) >= 3000 else "not_hydrated"
    if session["duration_s"] is None:
        return None
    minutes = session["duration_s"] / 60
    return "under_10_min" if minutes < 10 else "10_to_20_min" if minutes < 20 else "20_min_or_more"


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sessions=property_sessions())
def test_insights_match_python(client, make_person, sessions):
    person = make_person("Property")
    body = []
    for session in sessions:
        session["id"] = str(uuid.uuid4())
        session["started_at"] = PROPERTY_FROM + timedelta(minutes=session["minute"])
        for factor in ("hydration", "duration"):
            session[factor] = None
        item = {
            "id": session["id"],
            "started_at": session["started_at"].isoformat(),
            "ratings": [
                {
                    "region": region,
                    "side": side,
                    "metric": metric,
                    "before": before / 10,
                    "after": None if after is None else after / 10,
                }
                for region, side, metric, before, after in session["ratings"]
            ],
        }
        if session["tool"] is not None:
            item["tool"] = session["tool"]
        if session["water"] is not None:
            item["water_before_ml"], item["water_after_ml"] = (w / 10 for w in session["water"])
        if session["duration_s"] is not None:
            ended = session["started_at"] + timedelta(seconds=session["duration_s"])
            item["ended_at"] = ended.isoformat()
        session["hydration"] = _level(session, "hydration")
        session["duration"] = _level(session, "duration")
        body.append(item)
    if body:
        response = client.post(
            "/v1/sessions/batch", json={"sessions": body}, headers=person.headers
        )
        assert response.status_code == 200, response.text
        assert {result["status"] for result in response.json()["results"]} == {"created"}

    got = summary(
        client,
        person,
        "/v1/insights",
        **{"from": PROPERTY_FROM.isoformat(), "to": PROPERTY_TO.isoformat(), "tz": "UTC"},
    )
    carry_over, asymmetry, what_works, worse = _expected(sessions)

    assert {
        (e["region"], e["side"], e["metric"]): {
            k: e[k]
            for k in (
                "intervals",
                "mean_relief",
                "mean_rebound",
                "retention_pct",
                "median_gap_days",
            )
        }
        for e in got["carry_over"]
    } == carry_over
    assert {
        (e["region"], e["metric"]): {
            k: e[k] for k in ("sessions", "mean_diff_before", "mean_diff_after")
        }
        for e in got["asymmetry"]
    } == asymmetry

    listed = {
        (e["region"], e["side"], e["metric"], e["factor"], e["level"]): e for e in got["what_works"]
    }
    assert set(listed) == set(what_works)
    for key, (mine, rest) in what_works.items():
        entry = listed[key]
        mean, rest_mean = Fraction(sum(mine), 10 * len(mine)), Fraction(sum(rest), 10 * len(rest))
        assert (entry["n"], entry["rest_n"]) == (len(mine), len(rest))
        assert entry["mean_improvement"] == _half_up(mean, 2)
        assert entry["rest_mean_improvement"] == _half_up(rest_mean, 2)
        assert entry["difference"] == _half_up(mean - rest_mean, 2)
        share, rest_share = variance(mine) / 100 / len(mine), variance(rest) / 100 / len(rest)
        se = (share + rest_share) ** 0.5
        if se == 0:
            low = high = float(mean - rest_mean)
        else:
            df = (share + rest_share) ** 2 / (
                share**2 / (len(mine) - 1) + rest_share**2 / (len(rest) - 1)
            )
            margin = t_quantile_975(df) * se
            low, high = float(mean - rest_mean) - margin, float(mean - rest_mean) + margin
        assert abs(entry["ci95_low"] - low) <= 0.005 + 1e-9
        assert abs(entry["ci95_high"] - high) <= 0.005 + 1e-9

    assert got["safety"]["flagged_sessions"] == len({session["id"] for session, _ in worse})
    assert sorted(
        (item["session_id"], item["region"], item["side"], item["metric"], item["worsening"])
        for item in got["safety"]["items"]
    ) == sorted(
        (session["id"], r[0], r[1], r[2], DIRECTION[r[2]] * (r[3] - r[4]) / 10)
        for session, r in worse
    )
