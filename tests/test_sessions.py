"""Release sessions: create, idempotency, validation, read, list, patch, delete, batch."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import Person
from tests.factories import session_body


def _create(client, person: Person, **overrides):
    return client.post("/v1/sessions", json=session_body(**overrides), headers=person.headers)


def test_create_returns_the_session_in_utc(client, alice: Person):
    body = session_body()
    response = client.post("/v1/sessions", json=body, headers=alice.headers)
    assert response.status_code == 201
    created = response.json()
    assert created["id"] == body["id"]
    assert created["started_at"] == "2026-11-20T06:30:00Z"
    assert created["ended_at"] == "2026-11-20T06:45:00Z"
    assert created["ratings"][0] == {
        "region": "adductors",
        "side": "left",
        "metric": "pain",
        "before": 6,
        "after": 3,
    }
    assert created["complete"] is True
    assert created["version"] == 1
    assert response.headers["Location"] == f"/v1/sessions/{body['id']}"
    assert response.headers["ETag"] == '"v1"'


def test_server_chooses_the_id_when_none_is_given(client, alice: Person):
    body = session_body()
    del body["id"]
    response = client.post("/v1/sessions", json=body, headers=alice.headers)
    assert response.status_code == 201
    assert uuid.UUID(response.json()["id"])


def test_side_defaults_to_both_and_incomplete_without_after(client, alice: Person):
    response = _create(
        client, alice, ratings=[{"region": "calves", "metric": "stiffness", "before": 4.5}]
    )
    assert response.status_code == 201
    rating = response.json()["ratings"][0]
    assert rating["side"] == "both"
    assert rating["after"] is None
    assert rating["before"] == 4.5
    assert response.json()["complete"] is False


def test_idempotent_replay_and_conflict(client, alice: Person):
    body = session_body()
    first = client.post("/v1/sessions", json=body, headers=alice.headers)
    # Same body, with an equivalent timestamp spelled in UTC and a float spelled as an int.
    replay_body = dict(body, started_at="2026-11-20T06:30:00Z")
    replay = client.post("/v1/sessions", json=replay_body, headers=alice.headers)
    assert replay.status_code == 200
    assert replay.json() == first.json()
    conflict = client.post("/v1/sessions", json=dict(body, notes="other"), headers=alice.headers)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    stored = client.get(f"/v1/sessions/{body['id']}", headers=alice.headers).json()
    assert stored["notes"] == body["notes"]
    assert stored["version"] == 1


def test_another_persons_id_is_a_conflict_not_a_leak(client, alice: Person, bob: Person):
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)
    response = client.post("/v1/sessions", json=body, headers=bob.headers)
    assert response.status_code == 409
    assert body["notes"] not in response.text


NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"started_at": None}, ["body", "started_at"]),
        ({"started_at": "2026-11-20T07:30:00"}, ["body", "started_at"]),  # naive
        ({"started_at": 1763620200}, ["body", "started_at"]),  # not a timestamp string
        # A day ahead: NOW is taken at collection, minutes before this runs in a long suite.
        ({"started_at": (NOW + timedelta(days=1)).isoformat()}, ["body", "started_at"]),
        ({"ended_at": "2026-11-20T07:29:00+01:00"}, ["body", "ended_at"]),  # before start
        ({"ended_at": "2026-11-20T13:31:00+01:00"}, ["body", "ended_at"]),  # > 6 hours
        ({"water_before_ml": 3001}, ["body", "water_before_ml"]),
        ({"water_after_ml": -1}, ["body", "water_after_ml"]),
        ({"water_before_ml": True}, ["body", "water_before_ml"]),
        ({"water_before_ml": "400"}, ["body", "water_before_ml"]),
        ({"felt_unwell_after": "no"}, ["body", "felt_unwell_after"]),
        ({"notes": "x" * 2001}, ["body", "notes"]),
        ({"tool": "chainsaw"}, ["body", "tool"]),
        ({"ratings": []}, ["body", "ratings"]),
        (
            {
                "ratings": [
                    {"region": "calves", "metric": "pain", "before": 1, "side": side}
                    for side in ("left", "right", "both")
                ]
                * 11
            },
            ["body", "ratings"],
        ),  # 33 ratings
        (
            {"ratings": [{"region": "calves", "metric": "pain", "before": 1}] * 2},
            ["body", "ratings"],
        ),  # duplicate (region, side, metric)
        (
            {"ratings": [{"region": "toes", "metric": "pain", "before": 1}]},
            ["body", "ratings", 0, "region"],
        ),
        (
            {"ratings": [{"region": "calves", "metric": "joy", "before": 1}]},
            ["body", "ratings", 0, "metric"],
        ),
        (
            {"ratings": [{"region": "calves", "side": "middle", "metric": "pain", "before": 1}]},
            ["body", "ratings", 0, "side"],
        ),
        ({"ratings": [{"region": "calves", "metric": "pain"}]}, ["body", "ratings", 0, "before"]),
        (
            {"ratings": [{"region": "calves", "metric": "pain", "before": 11}]},
            ["body", "ratings", 0, "before"],
        ),
        (
            {"ratings": [{"region": "calves", "metric": "pain", "before": 5, "after": -1}]},
            ["body", "ratings", 0, "after"],
        ),
        (
            {"ratings": [{"region": "calves", "metric": "rom", "before": 181}]},
            ["body", "ratings", 0, "before"],
        ),
        (
            {"ratings": [{"region": "calves", "metric": "pain", "before": 5.25}]},
            ["body", "ratings", 0, "before"],
        ),
        (
            {"ratings": [{"region": "calves", "metric": "pain", "before": True}]},
            ["body", "ratings", 0, "before"],
        ),
        (
            {"ratings": [{"region": "calves", "metric": "pain", "before": 1, "extra": 1}]},
            ["body", "ratings", 0, "extra"],
        ),
        ({"version": 7}, ["body", "version"]),
        ({"user_id": str(uuid.uuid4())}, ["body", "user_id"]),
        ({"id": "not-a-uuid"}, ["body", "id"]),
    ],
)
def test_every_validation_rule_is_422_naming_the_field(client, alice: Person, overrides, loc):
    body = session_body(**overrides)
    body = {key: value for key, value in body.items() if value is not None or key != "started_at"}
    response = client.post("/v1/sessions", json=body, headers=alice.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["status"] == 422
    assert problem["title"]
    assert problem["detail"]
    assert any(error["loc"][: len(loc)] == loc for error in problem["errors"]), problem
    assert client.get("/v1/sessions", headers=alice.headers).json()["items"] == []


def test_numbers_accept_int_float_and_one_decimal(client, alice: Person):
    response = _create(
        client,
        alice,
        water_before_ml=400.0,
        water_after_ml=0,
        ratings=[
            {"region": "neck", "metric": "pain", "before": 5, "after": 5.0},
            {"region": "neck", "metric": "rom", "before": 40.5, "after": 0},
        ],
    )
    assert response.status_code == 201
    body = response.json()
    assert body["water_before_ml"] == 400
    assert body["water_after_ml"] == 0
    assert body["ratings"][1] == {
        "region": "neck",
        "side": "both",
        "metric": "rom",
        "before": 40.5,
        "after": 0,
    }


def test_malformed_json_is_400(client, alice: Person):
    response = client.post(
        "/v1/sessions",
        content=b'{"started_at": ',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_get_patch_delete_are_404_for_another_person(client, alice: Person, bob: Person):
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)
    url = f"/v1/sessions/{body['id']}"
    assert client.get(url, headers=bob.headers).status_code == 404
    assert client.patch(url, json={"notes": "mine"}, headers=bob.headers).status_code == 404
    assert client.delete(url, headers=bob.headers).status_code == 404
    assert client.get("/v1/sessions", headers=bob.headers).json()["items"] == []
    assert client.get("/v1/sessions/changes", headers=bob.headers).json()["items"] == []
    stored = client.get(url, headers=alice.headers).json()
    assert stored["notes"] == body["notes"]
    assert stored["version"] == 1


def test_unknown_session_is_404(client, alice: Person):
    response = client.get(f"/v1/sessions/{uuid.uuid4()}", headers=alice.headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_patch_merges_and_bumps_version(client, alice: Person):
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)
    url = f"/v1/sessions/{body['id']}"
    response = client.patch(url, json={"notes": None, "water_after_ml": 500}, headers=alice.headers)
    assert response.status_code == 200
    patched = response.json()
    assert patched["notes"] is None
    assert patched["water_after_ml"] == 500
    assert patched["water_before_ml"] == 400  # untouched
    assert patched["ratings"] == client.get(url, headers=alice.headers).json()["ratings"]
    assert patched["version"] == 2
    assert response.headers["ETag"] == '"v2"'


def test_patch_ratings_replaces_the_list(client, alice: Person):
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)
    url = f"/v1/sessions/{body['id']}"
    new_ratings = [{"region": "glutes", "side": "right", "metric": "pain", "before": 7}]
    patched = client.patch(url, json={"ratings": new_ratings}, headers=alice.headers).json()
    assert patched["ratings"] == [{**new_ratings[0], "after": None}]
    assert patched["complete"] is False
    filtered = client.get("/v1/sessions?region=adductors", headers=alice.headers).json()
    assert filtered["items"] == []


def test_patch_without_change_keeps_the_version(client, alice: Person):
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)
    url = f"/v1/sessions/{body['id']}"
    assert client.patch(url, json={}, headers=alice.headers).json()["version"] == 1
    same = client.patch(url, json={"notes": body["notes"]}, headers=alice.headers)
    assert same.json()["version"] == 1


def test_patch_validation(client, alice: Person):
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)
    url = f"/v1/sessions/{body['id']}"
    for patch, field in [
        ({"started_at": None}, "started_at"),
        ({"ratings": None}, "ratings"),
        ({"ended_at": "2026-11-20T05:00:00Z"}, "ended_at"),  # before the stored start
        ({"id": str(uuid.uuid4())}, "id"),
        ({"version": 9}, "version"),
        ({"water_before_ml": False}, "water_before_ml"),
    ]:
        response = client.patch(url, json=patch, headers=alice.headers)
        assert response.status_code == 422, (patch, response.text)
        assert any(field in error["loc"] for error in response.json()["errors"])
    assert client.get(url, headers=alice.headers).json()["version"] == 1


def test_if_match(client, alice: Person):
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)
    url = f"/v1/sessions/{body['id']}"
    ok = client.patch(url, json={"notes": "a"}, headers={**alice.headers, "If-Match": '"v1"'})
    assert ok.status_code == 200
    assert ok.json()["version"] == 2
    stale = client.patch(url, json={"notes": "b"}, headers={**alice.headers, "If-Match": '"v1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert client.get(url, headers=alice.headers).json()["notes"] == "a"
    etag = client.get(url, headers=alice.headers).headers["ETag"]
    assert etag == '"v2"'
    stale_delete = client.delete(url, headers={**alice.headers, "If-Match": '"v1"'})
    assert stale_delete.status_code == 412


def test_delete_then_404_and_replay_conflicts(client, alice: Person):
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)
    url = f"/v1/sessions/{body['id']}"
    assert client.delete(url, headers=alice.headers).status_code == 204
    assert client.get(url, headers=alice.headers).status_code == 404
    assert client.patch(url, json={"notes": "x"}, headers=alice.headers).status_code == 404
    assert client.delete(url, headers=alice.headers).status_code == 404
    assert client.get("/v1/sessions", headers=alice.headers).json()["items"] == []
    assert client.post("/v1/sessions", json=body, headers=alice.headers).status_code == 409


def _seed(client, person: Person, count: int) -> list[str]:
    start = datetime(2026, 1, 1, 8, tzinfo=UTC)
    ids = []
    for index in range(count):
        # Every third session shares its start time with the previous one: ties need the id.
        offset = timedelta(hours=index - index % 3 // 2)
        body = session_body(started_at=(start + offset).isoformat(), ended_at=None)
        if index % 4 == 0:
            body["ratings"] = [{"region": "calves", "metric": "rom", "before": 20}]
        assert client.post("/v1/sessions", json=body, headers=person.headers).status_code == 201
        ids.append(body["id"])
    return ids


def test_pagination_returns_every_session_once_newest_first(client, alice: Person):
    ids = _seed(client, alice, 23)
    seen: list[dict] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/sessions", params=params, headers=alice.headers).json()
        seen.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert sorted(item["id"] for item in seen) == sorted(ids)
    keys = [(item["started_at"], item["id"]) for item in seen]
    assert keys == sorted(keys, reverse=True)


def test_list_filters(client, alice: Person):
    _seed(client, alice, 8)
    headers = alice.headers
    everything = client.get("/v1/sessions", headers=headers).json()["items"]
    assert len(everything) == 8
    rom_only = client.get("/v1/sessions?region=calves&metric=rom", headers=headers).json()
    assert len(rom_only["items"]) == 2  # indexes 0 and 4
    incomplete = client.get("/v1/sessions?complete=false", headers=headers).json()["items"]
    assert {item["id"] for item in incomplete} == {item["id"] for item in rom_only["items"]}
    window = client.get(
        "/v1/sessions",
        params={"from": "2026-01-01T09:00:00Z", "to": "2026-01-01T11:00:00+00:00"},
        headers=headers,
    ).json()["items"]
    assert window
    assert all(
        "2026-01-01T09:00:00Z" <= item["started_at"] <= "2026-01-01T11:00:00Z" for item in window
    )


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "from=2026-01-01T00:00:00",
        "region=toes",
        "metric=joy",
        "complete=maybe",
    ],
)
def test_list_parameter_validation(client, alice: Person, query):
    response = client.get(f"/v1/sessions?{query}", headers=alice.headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("cursor", ["garbage", "Zm9vfGJhcg", "!!!"])
def test_malformed_cursor_is_400(client, alice: Person, cursor):
    response = client.get("/v1/sessions", params={"cursor": cursor}, headers=alice.headers)
    assert response.status_code == 400


def test_batch_mixed_outcomes_in_input_order(client, alice: Person):
    existing = session_body()
    client.post("/v1/sessions", json=existing, headers=alice.headers)
    fresh = session_body()
    no_id = session_body()
    del no_id["id"]
    invalid = session_body(water_before_ml=99999)
    items = [fresh, existing, dict(existing, notes="changed"), invalid, no_id, fresh]
    response = client.post("/v1/sessions/batch", json={"sessions": items}, headers=alice.headers)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["status"] for result in results] == [
        "created",
        "unchanged",
        "conflict",
        "invalid",
        "created",
        "unchanged",
    ]
    assert results[0]["id"] == fresh["id"]
    assert results[3]["id"] == invalid["id"]
    assert results[3]["errors"][0]["loc"] == ["water_before_ml"]
    assert "errors" not in results[0]
    listed = client.get("/v1/sessions", headers=alice.headers).json()["items"]
    assert {item["id"] for item in listed} == {existing["id"], fresh["id"], results[4]["id"]}


def test_batch_size_limits(client, alice: Person):
    assert (
        client.post("/v1/sessions/batch", json={"sessions": []}, headers=alice.headers).status_code
        == 422
    )
    too_many = [session_body() for _ in range(501)]
    assert (
        client.post(
            "/v1/sessions/batch", json={"sessions": too_many}, headers=alice.headers
        ).status_code
        == 422
    )
    assert (
        client.post("/v1/sessions/batch", json={"items": []}, headers=alice.headers).status_code
        == 422
    )


def test_batch_of_500_is_accepted(client, alice: Person):
    items = [session_body() for _ in range(500)]
    response = client.post("/v1/sessions/batch", json={"sessions": items}, headers=alice.headers)
    assert response.status_code == 200
    assert {result["status"] for result in response.json()["results"]} == {"created"}


def test_server_chosen_ids_are_time_ordered_uuids(client, alice: Person):
    """Ids the server picks are UUIDv7: they sort in creation order (they index compactly)."""
    items = [{key: value for key, value in session_body().items() if key != "id"} for _ in range(5)]
    response = client.post("/v1/sessions/batch", json={"sessions": items}, headers=alice.headers)
    single = client.post("/v1/sessions", json=items[0], headers=alice.headers)
    assert single.status_code == 201

    ids = [uuid.UUID(result["id"]) for result in response.json()["results"]]
    ids.append(uuid.UUID(single.json()["id"]))
    assert {session_id.version for session_id in ids} == {7}
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
