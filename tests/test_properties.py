"""Property tests (Hypothesis) for session validation.

- Any valid session round-trips unchanged: GET returns what was sent, times normalised to UTC.
- Any body the schema rejects is 422 (problem+json) and stores nothing.
- Any JSON value in any field is either accepted (and then round-trips) or refused with 422;
  never a 5xx.
"""

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from conftest import Person
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.catalog import METRICS, REGIONS, SIDES, TOOLS

# Bounded for CI; the fixtures (client, user) are shared by the examples of one test on purpose.
BOUNDED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROBLEM = "application/problem+json"
LATEST_START = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=120,
)


def tenths(low: float, high: float) -> st.SearchStrategy[float]:
    """Numbers with at most one decimal, as a client sends them."""
    return st.integers(int(low * 10), int(high * 10)).map(lambda n: n / 10)


@st.composite
def aware_datetimes(draw: st.DrawFn) -> datetime:
    naive = draw(st.datetimes(min_value=datetime(2015, 1, 1), max_value=LATEST_START))
    offset = draw(st.integers(-12 * 4, 14 * 4)) * 15  # whole quarter hours, as zones have
    return naive.replace(tzinfo=timezone(timedelta(minutes=offset)))


@st.composite
def ratings(draw: st.DrawFn) -> list[dict[str, Any]]:
    keys = draw(
        st.lists(
            st.tuples(
                st.sampled_from([region.slug for region in REGIONS]),
                st.sampled_from(SIDES),
                st.sampled_from(METRICS),
            ),
            min_size=1,
            max_size=6,
            unique_by=lambda key: (key[0], key[1], key[2].slug),
        )
    )
    drawn = []
    for region, side, metric in keys:
        rating: dict[str, Any] = {
            "region": region,
            "metric": metric.slug,
            "before": draw(tenths(metric.min, metric.max)),
        }
        if side != "both" or draw(st.booleans()):  # `both` is also the default
            rating["side"] = side
        after = draw(st.none() | tenths(metric.min, metric.max))
        if after is not None or draw(st.booleans()):
            rating["after"] = after
        drawn.append(rating)
    return drawn


@st.composite
def valid_sessions(draw: st.DrawFn) -> tuple[dict[str, Any], datetime, datetime | None]:
    """A JSON body, with its start and end as the datetimes they stand for."""
    started_at = draw(aware_datetimes())
    ended_at = draw(
        st.none()
        | st.integers(0, 6 * 3600).map(lambda seconds: started_at + timedelta(seconds=seconds))
    )
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "started_at": started_at.isoformat(),
        "ratings": draw(ratings()),
    }
    optional = {
        "ended_at": None if ended_at is None else ended_at.isoformat(),
        "tool": draw(st.none() | st.sampled_from(TOOLS)),
        "water_before_ml": draw(st.none() | tenths(0, 3000)),
        "water_after_ml": draw(st.none() | tenths(0, 3000)),
        "felt_unwell_after": draw(st.none() | st.booleans()),
        "notes": draw(st.none() | TEXT),
    }
    for name, value in optional.items():
        if value is not None or draw(st.booleans()):  # null and absent mean the same
            body[name] = value
    return body, started_at, ended_at


def _utc(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


def _assert_round_trip(
    sent: dict[str, Any], started_at: datetime, ended_at: datetime | None, got: dict[str, Any]
) -> None:
    assert got["id"] == sent["id"]
    assert _utc(got["started_at"]) == started_at
    assert (got["ended_at"] and _utc(got["ended_at"])) == ended_at
    for name in ("tool", "water_before_ml", "water_after_ml", "felt_unwell_after", "notes"):
        assert got[name] == sent.get(name), name
    expected = [
        {"side": "both", "after": None, **rating} for rating in sent["ratings"]
    ]  # defaults filled in, order kept
    assert got["ratings"] == expected
    assert got["complete"] is all(rating["after"] is not None for rating in expected)
    assert got["version"] == 1


@BOUNDED
@given(drawn=valid_sessions())
def test_a_valid_session_round_trips_unchanged(
    client: TestClient, alice: Person, drawn: tuple[dict[str, Any], datetime, datetime | None]
) -> None:
    body, started_at, ended_at = drawn

    created = client.post("/v1/sessions", json=body, headers=alice.headers)
    assert created.status_code == 201, created.text
    got = client.get(f"/v1/sessions/{body['id']}", headers=alice.headers)

    assert got.status_code == 200
    assert got.json() == created.json()
    _assert_round_trip(body, started_at, ended_at, got.json())


def _replace(name: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda body: {**body, name: value}


def _drop(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda body: {key: value for key, value in body.items() if key != name}


def _first_rating(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(body: dict[str, Any]) -> dict[str, Any]:
        first = {**body["ratings"][0], **changes}
        return {**body, "ratings": [first, *body["ratings"][1:]]}

    return mutate


def _shift_end(delta: timedelta) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(body: dict[str, Any]) -> dict[str, Any]:
        started_at = datetime.fromisoformat(body["started_at"])
        return {**body, "ended_at": (started_at + delta).isoformat()}

    return mutate


def _duplicate_rating(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "ratings": [*body["ratings"], dict(body["ratings"][0])]}


FUTURE = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
# Every one of these breaks a rule of the contract.
INVALID: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "unknown field": _replace("colour", "blue"),
    "server-owned version": _replace("version", 7),
    "server-owned user_id": _replace("user_id", str(uuid.uuid4())),
    "server-owned complete": _replace("complete", True),
    "no started_at": _drop("started_at"),
    "null started_at": _replace("started_at", None),
    "naive started_at": _replace("started_at", "2025-03-01T07:30:00"),
    "unix time started_at": _replace("started_at", 1_700_000_000),
    "unix time string started_at": _replace("started_at", "1700000000"),
    "date only started_at": _replace("started_at", "2025-03-01"),
    "future started_at": _replace("started_at", FUTURE),
    "ended before it started": _shift_end(timedelta(seconds=-1)),
    "ended after six hours": _shift_end(timedelta(hours=6, seconds=1)),
    "unknown tool": _replace("tool", "rolling_pin"),
    "negative water": _replace("water_before_ml", -0.1),
    "too much water": _replace("water_after_ml", 3000.1),
    "two decimals of water": _replace("water_before_ml", 300.25),
    "water as a string": _replace("water_before_ml", "300"),
    "water as a boolean": _replace("water_after_ml", True),
    "unwell as a string": _replace("felt_unwell_after", "yes"),
    "unwell as a number": _replace("felt_unwell_after", 1),
    "notes too long": _replace("notes", "n" * 2001),
    "notes as a list": _replace("notes", ["a"]),
    "no ratings": _drop("ratings"),
    "empty ratings": _replace("ratings", []),
    "31 ratings": lambda body: {**body, "ratings": body["ratings"][:1] * 31},
    "a rating twice": _duplicate_rating,
    "unknown region": _first_rating(region="knee"),
    "unknown side": _first_rating(side="middle"),
    "unknown metric": _first_rating(metric="joy"),
    "pain above 10": _first_rating(metric="pain", before=10.5),
    "rom above 180": _first_rating(metric="rom", before=180.1),
    "negative after": _first_rating(after=-1),
    "before missing": lambda body: {
        **body,
        "ratings": [
            {key: value for key, value in body["ratings"][0].items() if key != "before"},
            *body["ratings"][1:],
        ],
    },
    "before as a string": _first_rating(before="5"),
    "before as a boolean": _first_rating(before=True),
    "two decimals": _first_rating(before=1.25),
    "unknown rating field": _first_rating(felt="ok"),
    "id not a uuid": _replace("id", "not-a-uuid"),
}


def _stored_ids(client: TestClient, person: Person) -> list[str]:
    items = client.get("/v1/sessions", params={"limit": 200}, headers=person.headers).json()
    return [item["id"] for item in items["items"]]


@BOUNDED
@given(drawn=valid_sessions(), mistake=st.sampled_from(sorted(INVALID)))
def test_a_body_the_schema_rejects_is_422_and_stores_nothing(
    client: TestClient,
    alice: Person,
    drawn: tuple[dict[str, Any], datetime, datetime | None],
    mistake: str,
) -> None:
    body = INVALID[mistake](drawn[0])

    answer = client.post("/v1/sessions", json=body, headers=alice.headers)

    assert answer.status_code == 422, (mistake, answer.text)
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["status"] == 422
    assert problem["errors"], problem
    assert _stored_ids(client, alice) == []


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=6,
)
FIELDS = [
    "id",
    "started_at",
    "ended_at",
    "tool",
    "water_before_ml",
    "water_after_ml",
    "felt_unwell_after",
    "notes",
    "ratings",
]


@BOUNDED
@given(drawn=valid_sessions(), field=st.sampled_from(FIELDS), value=JSON_VALUES)
def test_any_json_in_any_field_is_accepted_or_422_never_a_crash(
    client: TestClient,
    alice: Person,
    drawn: tuple[dict[str, Any], datetime, datetime | None],
    field: str,
    value: Any,
) -> None:
    body = {**drawn[0], field: value}
    before = _stored_ids(client, alice)

    answer = client.post("/v1/sessions", json=body, headers=alice.headers)

    assert answer.status_code in (201, 422), answer.text
    if answer.status_code == 422:
        assert answer.headers["content-type"] == PROBLEM
        assert _stored_ids(client, alice) == before
    else:
        stored = client.get(f"/v1/sessions/{answer.json()['id']}", headers=alice.headers)
        assert stored.json() == answer.json()
        assert json.loads(answer.text)  # a well-formed document
