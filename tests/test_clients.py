"""The coach's side: read-only views of a client's sessions, privacy, API keys (the roster:
test_analytics_roster.py)."""

import uuid
from datetime import UTC, datetime, timedelta

from tests.factories import api_key, link, session_body, session_days_ago


def _hamstrings():
    return [{"region": "hamstrings", "metric": "pain", "before": 5, "after": 4}]


def _assert_not_found(response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# --- reading a client's sessions ---------------------------------------------------------


def test_coach_reads_the_client_sessions_exactly_as_the_client_does(client, make_person):
    coach, person = make_person("Coach"), make_person("Client")
    link(client, coach, person)
    newest = session_days_ago(client, person, 1)
    middle = session_days_ago(client, person, 2, ratings=_hamstrings())
    oldest = session_days_ago(client, person, 3, ratings=_hamstrings())
    own, coached = "/v1/sessions", f"/v1/clients/{person.id}/sessions"

    listed = client.get(coached, headers=coach.headers)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [
        newest["id"],
        middle["id"],
        oldest["id"],
    ]
    assert listed.json() == client.get(own, headers=person.headers).json()

    # Filters and pagination behave identically on both paths.
    filtered = {"region": "hamstrings", "limit": 1}
    first = client.get(coached, params=filtered, headers=coach.headers).json()
    assert first == client.get(own, params=filtered, headers=person.headers).json()
    assert [item["id"] for item in first["items"]] == [middle["id"]]
    second = client.get(
        coached, params={**filtered, "cursor": first["next_cursor"]}, headers=coach.headers
    ).json()
    assert [item["id"] for item in second["items"]] == [oldest["id"]]
    assert second["next_cursor"] is None
    since = (datetime.now(UTC) - timedelta(days=1, hours=12)).isoformat()
    recent = client.get(coached, params={"from": since}, headers=coach.headers).json()
    assert [item["id"] for item in recent["items"]] == [newest["id"]]
    assert client.get(coached, params={"cursor": "!!"}, headers=coach.headers).status_code in {
        400,
        422,
    }

    one = client.get(f"{coached}/{middle['id']}", headers=coach.headers)
    assert one.status_code == 200
    assert one.json() == middle
    assert one.headers["ETag"] == '"v1"'


def test_session_list_query_is_documented_identically_on_both_paths(client):
    paths = client.get("/openapi.json").json()["paths"]
    own = paths["/v1/sessions"]["get"]["parameters"]
    coached = paths["/v1/clients/{client_id}/sessions"]["get"]["parameters"]
    assert [p for p in coached if p["name"] != "client_id"] == own
    assert {p["name"] for p in own} == {
        "from",
        "to",
        "region",
        "metric",
        "complete",
        "limit",
        "cursor",
    }


def test_a_coach_with_two_clients_sees_each_through_its_own_grant(client, make_person):
    coach, ann, ben = make_person("Coach"), make_person("Ann"), make_person("Ben")
    ann_grant = link(client, coach, ann)
    link(client, coach, ben)
    ann_session, ben_session = session_days_ago(client, ann, 1), session_days_ago(client, ben, 1)

    ann_list = client.get(f"/v1/clients/{ann.id}/sessions", headers=coach.headers).json()
    ben_list = client.get(f"/v1/clients/{ben.id}/sessions", headers=coach.headers).json()
    assert [item["id"] for item in ann_list["items"]] == [ann_session["id"]]
    assert [item["id"] for item in ben_list["items"]] == [ben_session["id"]]
    # A session is reachable only under its own client.
    _assert_not_found(
        client.get(f"/v1/clients/{ann.id}/sessions/{ben_session['id']}", headers=coach.headers)
    )

    # Ann revokes: Ben stays readable.
    assert client.delete(f"/v1/grants/{ann_grant['id']}", headers=ann.headers).status_code == 204
    _assert_not_found(client.get(f"/v1/clients/{ann.id}/sessions", headers=coach.headers))
    assert client.get(f"/v1/clients/{ben.id}/sessions", headers=coach.headers).status_code == 200
    one = client.get(f"/v1/clients/{ben.id}/sessions/{ben_session['id']}", headers=coach.headers)
    assert one.status_code == 200


def test_a_second_coach_sees_nothing(client, make_person):
    coach, other_coach, person = make_person("Coach"), make_person("Other"), make_person("Client")
    link(client, coach, person)
    session = session_days_ago(client, person, 1)
    paths = [
        f"/v1/clients/{person.id}/sessions",
        f"/v1/clients/{person.id}/sessions/{session['id']}",
    ]

    for path in paths:
        refused = client.get(path, headers=other_coach.headers)
        _assert_not_found(refused)
        # Indistinguishable from a person who does not exist.
        missing = client.get(path.replace(person.id, str(uuid.uuid4())), headers=coach.headers)
        assert refused.json() == missing.json()
    _assert_not_found(client.delete(f"/v1/clients/{person.id}", headers=other_coach.headers))
    assert client.get("/v1/clients", headers=other_coach.headers).json() == {"items": []}
    # The first coach is unaffected.
    assert client.get(paths[1], headers=coach.headers).status_code == 200


def test_nobody_is_their_own_client(client, alice):
    session = session_days_ago(client, alice, 1)
    _assert_not_found(client.get(f"/v1/clients/{alice.id}/sessions", headers=alice.headers))
    _assert_not_found(
        client.get(f"/v1/clients/{alice.id}/sessions/{session['id']}", headers=alice.headers)
    )


def test_a_coach_can_never_write_a_clientsession_days_ago(client, make_person):
    coach, person = make_person("Coach"), make_person("Client")
    link(client, coach, person)
    session = session_days_ago(client, person, 1)
    own = f"/v1/sessions/{session['id']}"
    coached = f"/v1/clients/{person.id}/sessions"

    _assert_not_found(client.patch(own, json={"notes": "coach was here"}, headers=coach.headers))
    _assert_not_found(client.delete(own, headers=coach.headers))
    # No write route exists under /v1/clients.
    assert client.post(coached, json=session_body(), headers=coach.headers).status_code == 405
    assert (
        client.patch(f"{coached}/{session['id']}", json={"notes": "x"}, headers=coach.headers)
    ).status_code == 405
    assert client.delete(f"{coached}/{session['id']}", headers=coach.headers).status_code == 405

    stored = client.get(own, headers=person.headers)
    assert stored.status_code == 200
    assert stored.json() == session
    assert stored.json()["version"] == 1
    listed = client.get("/v1/sessions", headers=person.headers).json()
    assert [item["id"] for item in listed["items"]] == [session["id"]]


# --- API keys ----------------------------------------------------------------------------


def test_api_key_scopes_on_the_client_paths(client, make_person):
    coach, person = make_person("Coach"), make_person("Client")
    link(client, coach, person)
    session = session_days_ago(client, person, 1)
    roster, sessions = "/v1/clients", f"/v1/clients/{person.id}/sessions"
    one = f"{sessions}/{session['id']}"

    own_only, _ = api_key(client, coach, "sessions:read", "sessions:write", "summaries:read")
    for path in (roster, sessions, one):
        assert client.get(path, headers=own_only).status_code == 403, path

    clients_only, _ = api_key(client, coach, "clients:read")
    assert client.get(roster, headers=clients_only).status_code == 200
    assert client.get(sessions, headers=clients_only).status_code == 403
    assert client.get(one, headers=clients_only).status_code == 403

    reader, reader_id = api_key(client, coach, "clients:read", "sessions:read")
    for path in (roster, sessions, one):
        assert client.get(path, headers=reader).status_code == 200, path
    assert client.get(one, headers=reader).json() == session
    # A key acts for its owner only: the other coach's reader sees nothing.
    other_coach = make_person("Other")
    other_reader, _ = api_key(client, other_coach, "clients:read", "sessions:read")
    _assert_not_found(client.get(sessions, headers=other_reader))

    revoked = client.delete(f"/v1/api-keys/{reader_id}", headers=coach.headers)
    assert revoked.status_code == 204
    for path in (roster, sessions, one):
        assert client.get(path, headers=reader).status_code == 401, path


def test_anonymous_callers_get_401_on_client_paths(client, alice):
    assert client.get("/v1/clients").status_code == 401
    assert client.get(f"/v1/clients/{alice.id}/sessions").status_code == 401
    assert client.get(f"/v1/clients/{alice.id}/sessions/{uuid.uuid4()}").status_code == 401
