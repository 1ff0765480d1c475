"""Property: the database's summary equals a straightforward Python computation."""

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PERIOD_FROM = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)
PERIOD_TO = datetime(2026, 4, 5, 21, 0, tzinfo=UTC)  # spans New York's and Berlin's DST start
KEYS = [("adductors", "both", "pain"), ("adductors", "left", "rom"), ("calves", "both", "mobility")]
LIMITS = {"pain": 100, "rom": 1800, "mobility": 100}  # in tenths


@st.composite
def ratings(draw):
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True))
    result = []
    for region, side, metric in keys:
        limit = LIMITS[metric]
        before = draw(st.integers(0, limit)) / 10
        after = draw(st.none() | st.integers(0, limit).map(lambda tenths: tenths / 10))
        result.append(
            {"region": region, "side": side, "metric": metric, "before": before, "after": after}
        )
    return result


sessions_strategy = st.lists(
    st.tuples(
        # minutes from two days before the period to two days after it
        st.integers(-2 * 1440, int((PERIOD_TO - PERIOD_FROM).total_seconds() // 60) + 2 * 1440),
        ratings(),
    ),
    max_size=8,
)


def _bucket_start(local: date, bucket: str) -> date:
    if bucket == "day":
        return local
    if bucket == "week":
        return local - timedelta(days=local.weekday())
    return local.replace(day=1)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sessions=sessions_strategy,
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
    bucket=st.sampled_from(["day", "week", "month"]),
)
def test_summary_matches_python(client, make_person, sessions, tz, bucket):
    person = make_person("Property")
    body = [
        {
            "id": str(uuid.uuid4()),
            "started_at": (PERIOD_FROM + timedelta(minutes=minutes)).isoformat(),
            "ratings": session_ratings,
        }
        for minutes, session_ratings in sessions
    ]
    if body:
        response = client.post(
            "/v1/sessions/batch", json={"sessions": body}, headers=person.headers
        )
        assert response.status_code == 200, response.text
        assert {result["status"] for result in response.json()["results"]} == {"created"}

    response = client.get(
        "/v1/summary",
        params={
            "from": PERIOD_FROM.isoformat(),
            "to": PERIOD_TO.isoformat(),
            "tz": tz,
            "bucket": bucket,
        },
        headers=person.headers,
    )
    assert response.status_code == 200, response.text
    summary = response.json()

    zone = ZoneInfo(tz)
    inside = [
        (PERIOD_FROM + timedelta(minutes=minutes), session_ratings)
        for minutes, session_ratings in sessions
        if PERIOD_FROM <= PERIOD_FROM + timedelta(minutes=minutes) <= PERIOD_TO
    ]
    local_dates = {started.astimezone(zone).date() for started, _ in inside}
    complete = [
        1 for _, session_ratings in inside if all(r["after"] is not None for r in session_ratings)
    ]
    adherence = summary["adherence"]
    assert adherence["sessions"] == len(inside)
    assert adherence["complete_sessions"] == len(complete)
    assert adherence["active_days"] == len(local_dates)

    expected: dict[tuple[str, str, str], dict] = defaultdict(
        lambda: {"pairs": [], "per_bucket": defaultdict(int)}
    )
    for started, session_ratings in inside:
        bucket_start = _bucket_start(started.astimezone(zone).date(), bucket)
        for r in session_ratings:
            entry = expected[(r["region"], r["side"], r["metric"])]
            entry["per_bucket"][bucket_start.isoformat()] += 1
            if r["after"] is not None:
                entry["pairs"].append((r["before"], r["after"]))

    got = {(m["region"], m["side"], m["metric"]): m for m in summary["metrics"]}
    assert set(got) == set(expected)
    first = _bucket_start(PERIOD_FROM.astimezone(zone).date(), bucket)
    last = _bucket_start(PERIOD_TO.astimezone(zone).date(), bucket)
    for key, entry in expected.items():
        metric = got[key]
        pairs = entry["pairs"]
        assert metric["pairs"] == len(pairs)
        if pairs:
            mean_before = sum(before for before, _ in pairs) / len(pairs)
            mean_after = sum(after for _, after in pairs) / len(pairs)
            # Rounded to 2 decimals: within half a cent (plus float noise) of the exact mean.
            assert abs(metric["mean_before"] - mean_before) <= 0.005 + 1e-9
            assert abs(metric["mean_after"] - mean_after) <= 0.005 + 1e-9
        else:
            assert metric["mean_before"] is None
            assert metric["mean_after"] is None
        series = metric["series"]
        assert series[0]["start"] == first.isoformat()
        assert series[-1]["start"] == last.isoformat()
        starts = [point["start"] for point in series]
        assert starts == sorted(set(starts))
        assert {p["start"]: p["sessions"] for p in series if p["sessions"]} == dict(
            entry["per_bucket"]
        )
