"""The coach's roster (api/analytics/roster.py): activity, pain figures and flags, for every
client in one query; through GET /v1/clients and roster_pain directly."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import event
from sqlmodel import Session

from api.analytics.roster import NO_PAIN_DATA, roster_pain
from api.state import app_state
from tests.factories import link, session_days_ago
from tests.summary_data import log_session, rating


def test_roster_pain_on_crafted_data(client, app, make_person):
    now = datetime.now(UTC).replace(microsecond=0)

    def at(days: float) -> str:
        return (now - timedelta(days=days)).isoformat()

    worsening = make_person("Worsening")
    # Pain before 2, 4, 6 at 1, 2 and 3 weeks into the 28 days: slope +2/week, fitted
    # +8 over 4 weeks: improvement -8 <= -1 -> worsening. Pairs 2->2, 4->3, 6->5:
    # mean before 12/3 = 4, mean after 10/3 = 3.333, change -0.667 -> -0.67.
    log_session(client, worsening, at(21), rating("pain", 2, 2))
    log_session(client, worsening, at(14), rating("pain", 4, 3, region="calves"))
    log_session(client, worsening, at(7), rating("pain", 6, 5, side="left"))

    flared = make_person("Flared")
    # Before 6, 4, 2, 1: falling, improving. Two days ago pain went 1 -> 3: after higher.
    # Pairs: before (6 + 4 + 2 + 1) / 4 = 3.25, after (5 + 3 + 1 + 3) / 4 = 3, change -0.25.
    log_session(client, flared, at(21), rating("pain", 6, 5))
    log_session(client, flared, at(14), rating("pain", 4, 3))
    log_session(client, flared, at(7), rating("pain", 2, 1))
    log_session(client, flared, at(2), rating("pain", 1, 3), rating("rom", 30, 40))

    sparse = make_person("Sparse")
    # Two pain ratings in the window (no trend), one 40 days ago that does not count, and an
    # rom rating that is not pain. 8 days ago after > before, but that is not the last 7 days.
    log_session(client, sparse, at(40), rating("pain", 9, 1))
    log_session(client, sparse, at(8), rating("pain", 5, 6))
    log_session(client, sparse, at(3), rating("pain", 3, None), rating("rom", 20, 10))

    idle = make_person("Idle")
    outsider = make_person("Outsider")  # has data but is not in the roster asked for
    log_session(client, outsider, at(1), rating("pain", 1, 9))

    ids = [uuid.UUID(person.id) for person in (worsening, flared, sparse, idle)]
    statements: list[str] = []
    engine = app_state(app).engine

    def count(*args) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        with Session(engine) as db:
            pain = roster_pain(db, ids, now)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len([s for s in statements if "rating" in s]) == 1  # one grouped query, not four

    assert set(pain) == set(ids)
    first = pain[ids[0]]
    assert (first.mean_before_28d, first.mean_change_28d, first.trend) == (4.0, -0.67, "worsening")
    assert (first.pain_worsening, first.pain_after_higher) == (True, False)
    assert first.flags == ["pain_worsening"]

    second = pain[ids[1]]
    assert (second.mean_before_28d, second.mean_change_28d, second.trend) == (
        3.25,
        -0.25,
        "improving",
    )
    assert second.flags == ["pain_after_higher"]

    third = pain[ids[2]]
    # Pairs: only 5 -> 6 (3 -> null is not a pair): before 5, change +1; 2 ratings: no trend.
    assert (third.mean_before_28d, third.mean_change_28d, third.trend) == (5.0, 1.0, None)
    assert third.flags == []

    assert pain[ids[3]] == NO_PAIN_DATA
    assert pain[ids[3]].flags == []


def test_roster_pain_of_nobody(app):
    with Session(app_state(app).engine) as db:
        assert roster_pain(db, [], datetime.now(UTC)) == {}


def test_roster_endpoint_shows_pain_and_flags(client, make_person):
    coach, client_person = make_person("Coach"), make_person("Client")
    link(client, coach, client_person)
    now = datetime.now(UTC)
    # Pain before 2, 4, 6 one, two and three weeks into the 28 days: worsening. Yesterday
    # it went 6 -> 7: after higher. Pairs (2->2, 4->3, 6->7): before 4, after 4, change 0.
    for days_ago, before, after in ((21, 2, 2), (14, 4, 3), (1, 6, 7)):
        started_at = (now - timedelta(days=days_ago)).isoformat()
        log_session(client, client_person, started_at, rating("pain", before, after))

    items = client.get("/v1/clients", headers=coach.headers).json()["items"]

    assert len(items) == 1
    assert items[0]["pain"] == {
        "mean_before_28d": 4.0,
        "mean_change_28d": 0.0,
        "trend": "worsening",
    }
    assert items[0]["flags"] == ["pain_worsening", "pain_after_higher"]
    assert items[0]["sessions_7d"] == 1


# --- the roster --------------------------------------------------------------------------


def test_roster_lists_live_clients_with_activity_and_flags(client, make_person):
    coach = make_person("Coach")
    anna, bea, zed = make_person("anna"), make_person("Bea"), make_person("Zed")
    gone = make_person("Adam")
    grants = {person.id: link(client, coach, person) for person in (zed, anna, bea, gone)}
    # Adam revoked: not on the roster.
    gone_grant = grants[gone.id]["id"]
    assert client.delete(f"/v1/grants/{gone_grant}", headers=gone.headers).status_code == 204
    session_days_ago(client, gone, 1)

    # anna: sessions 2, 10 and 30 days ago, plus one 1 day ago that she deleted.
    latest = session_days_ago(client, anna, 2)
    session_days_ago(client, anna, 10)
    session_days_ago(client, anna, 30)
    deleted = session_days_ago(client, anna, 1)
    assert client.delete(f"/v1/sessions/{deleted['id']}", headers=anna.headers).status_code == 204
    # Bea: one session 8 days ago. Zed: none at all.
    bea_session = session_days_ago(client, bea, 8)
    # Sessions of a stranger and of the coach do not count for anyone.
    session_days_ago(client, coach, 1)

    response = client.get("/v1/clients", headers=coach.headers)

    assert response.status_code == 200
    no_pain = {"mean_before_28d": None, "mean_change_28d": None, "trend": None}
    assert response.json() == {
        "items": [
            {
                # By display name, case-insensitively: anna, Bea, Zed.
                "client": {"id": anna.id, "display_name": "anna"},
                "granted_at": grants[anna.id]["created_at"],
                "last_session_at": latest["started_at"],  # the deleted one does not count
                "sessions_7d": 1,  # 2 days ago (1 day ago was deleted)
                "sessions_28d": 2,  # 2 and 10 days ago; 30 days is outside
                # Pain 6 -> 3 in both (the factory's ratings): two ratings are no trend yet.
                "pain": {"mean_before_28d": 6.0, "mean_change_28d": -3.0, "trend": None},
                "flags": [],
            },
            {
                "client": {"id": bea.id, "display_name": "Bea"},
                "granted_at": grants[bea.id]["created_at"],
                "last_session_at": bea_session["started_at"],
                "sessions_7d": 0,
                "sessions_28d": 1,  # 8 days ago
                "pain": {"mean_before_28d": 6.0, "mean_change_28d": -3.0, "trend": None},
                "flags": ["inactive_7d"],
            },
            {
                "client": {"id": zed.id, "display_name": "Zed"},
                "granted_at": grants[zed.id]["created_at"],
                "last_session_at": None,
                "sessions_7d": 0,
                "sessions_28d": 0,
                "pain": no_pain,
                "flags": ["inactive_7d"],  # no session at all
            },
        ]
    }


def test_roster_breaks_name_ties_by_id(client, make_person):
    coach = make_person("Coach")
    twins = [make_person("Sam"), make_person("Sam")]
    for person in twins:
        link(client, coach, person)

    items = client.get("/v1/clients", headers=coach.headers).json()["items"]

    assert [item["client"]["id"] for item in items] == sorted(
        (person.id for person in twins), key=uuid.UUID
    )


def test_roster_is_the_coach_own(client, make_person):
    coach, person = make_person("Coach"), make_person("Client")
    link(client, coach, person)
    # The client has a coach, not clients; an empty roster is an empty list.
    assert client.get("/v1/clients", headers=person.headers).json() == {"items": []}
    assert len(client.get("/v1/clients", headers=coach.headers).json()["items"]) == 1


# --- flagged_7d: a session in the last 7 days has a worse rating --------------------------


def test_flagged_7d_is_a_worse_rating_in_the_last_7_days(client, make_person):
    coach = make_person("Coach")
    now = datetime.now(UTC)

    def at(days: float) -> str:
        return (now - timedelta(days=days)).isoformat()

    people = {
        name: make_person(name)
        for name in ("a-boundary", "b-old", "c-rom", "d-deleted", "e-corrected", "f-almost")
    }
    for person in people.values():
        link(client, coach, person)
    # Pain 3.1 -> 5.1 yesterday: exactly -2 = -mcid_abs (2.0000000000000004 in floats): worse.
    log_session(client, people["a-boundary"], at(1), rating("pain", 3.1, 5.1))
    # Worse 8 days ago (outside the 7 days); yesterday 3 -> 4 is higher, not worse.
    log_session(client, people["b-old"], at(8), rating("pain", 2, 9))
    log_session(client, people["b-old"], at(1), rating("pain", 3, 4))
    # Range of motion 40 -> 35 degrees (mcid_abs 5) six days and 23 hours ago; no pain at all.
    log_session(client, people["c-rom"], at(6.96), rating("rom", 40, 35))
    # Worse two days ago, but deleted since.
    deleted = log_session(client, people["d-deleted"], at(2), rating("pain", 1, 8))
    response = client.delete(f"/v1/sessions/{deleted}", headers=people["d-deleted"].headers)
    assert response.status_code == 204
    # Worse two days ago, then corrected to 1 -> 2.
    corrected = log_session(client, people["e-corrected"], at(2), rating("pain", 1, 8))
    response = client.patch(
        f"/v1/sessions/{corrected}",
        json={"ratings": [rating("pain", 1, 2)]},
        headers=people["e-corrected"].headers,
    )
    assert response.status_code == 200
    # Pain 3.1 -> 5 (-1.9) and mobility 5 -> 3.1 (-1.9, higher is better): not worse.
    log_session(
        client,
        people["f-almost"],
        at(1),
        rating("pain", 3.1, 5),
        rating("mobility", 5, 3.1, region="hamstrings"),
    )

    items = client.get("/v1/clients", headers=coach.headers).json()["items"]

    flags = {item["client"]["display_name"]: item["flags"] for item in items}
    assert flags == {
        "a-boundary": ["pain_after_higher", "flagged_7d"],
        "b-old": ["pain_after_higher"],
        "c-rom": ["flagged_7d"],
        "d-deleted": ["inactive_7d"],
        "e-corrected": ["pain_after_higher"],
        "f-almost": ["pain_after_higher"],
    }
