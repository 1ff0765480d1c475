"""FHIR R4 export: a Bundle of Observations that validates with fhir.resources."""

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from api.state import app_state
from tests.conftest import Person
from tests.factories import session_body
from tests.webhook_support import grant, revoke

LATERALITY = "http://hl7.org/fhir/StructureDefinition/observation-structureLaterality"


def observations(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"]]


def phase(observation: dict[str, Any]) -> str:
    [component] = observation["component"]
    return component["valueCodeableConcept"]["text"]


def test_export_is_a_valid_r4_bundle(client: TestClient, alice: Person) -> None:
    body = session_body(
        ratings=[
            {"region": "adductors", "side": "left", "metric": "pain", "before": 6, "after": 3},
            {"region": "adductors", "side": "left", "metric": "rom", "before": 35, "after": 42.5},
            {"region": "lower_back", "metric": "stiffness", "before": 5},  # after logged later
        ]
    )
    assert client.post("/v1/sessions", json=body, headers=alice.headers).status_code == 201

    response = client.get("/v1/export.fhir.json", headers=alice.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()

    parsed = Bundle.model_validate(bundle)  # raises on an invalid resource
    assert parsed.type == "collection"
    assert all(isinstance(entry.resource, Observation) for entry in parsed.entry)

    found = observations(bundle)
    # 2 ratings x (before, after) + 1 rating with before only = 5 observations
    assert len(found) == 5
    for observation in found:
        assert observation["status"] == "final"
        assert observation["effectiveDateTime"] == "2026-11-20T06:30:00Z"
        assert observation["identifier"][0]["value"] == f"urn:uuid:{body['id']}"
        assert observation["subject"]["display"] == "Alice"
    fullurls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(set(fullurls)) == 5

    pain = [o for o in found if o["code"].get("coding", [{}])[0].get("code") == "72514-3"]
    assert sorted((phase(o), o["valueQuantity"]["value"]) for o in pain) == [
        ("after", 3),
        ("before", 6),
    ]
    assert pain[0]["code"]["coding"][0]["system"] == "http://loinc.org"
    assert pain[0]["valueQuantity"]["unit"] == "0-10 numeric rating scale"
    site = pain[0]["bodySite"]
    assert site["text"] == "Adductors (inner thigh), left"
    assert "coding" not in site  # no SNOMED code we are sure of: text only
    [laterality] = site["extension"]
    assert laterality["url"] == LATERALITY
    assert laterality["valueCodeableConcept"]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "7771000",
        "display": "Left",
    }

    rom = [o for o in found if o["code"]["text"].startswith("Range of motion")]
    assert sorted(o["valueQuantity"]["value"] for o in rom) == [35, 42.5]
    assert rom[0]["valueQuantity"]["code"] == "deg"
    assert "coding" not in rom[0]["code"]  # no invented codes

    [stiffness] = [o for o in found if o["code"]["text"].startswith("Stiffness")]
    assert phase(stiffness) == "before"
    assert stiffness["bodySite"]["coding"][0]["code"] == "37822005"  # lower back structure
    assert "extension" not in stiffness["bodySite"]  # side "both": no laterality


def test_export_ids_are_stable_and_deleted_sessions_are_left_out(
    client: TestClient, alice: Person
) -> None:
    kept, dropped = session_body(), session_body()
    for body in (kept, dropped):
        client.post("/v1/sessions", json=body, headers=alice.headers)
    client.delete(f"/v1/sessions/{dropped['id']}", headers=alice.headers)
    first = client.get("/v1/export.fhir.json", headers=alice.headers).json()
    second = client.get("/v1/export.fhir.json", headers=alice.headers).json()
    assert {o["identifier"][0]["value"] for o in observations(first)} == {f"urn:uuid:{kept['id']}"}
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in second["entry"]]


def test_an_empty_export_validates(client: TestClient, alice: Person) -> None:
    bundle = client.get("/v1/export.fhir.json", headers=alice.headers).json()
    assert bundle["entry"] == []
    Bundle.model_validate(bundle)


def test_coach_export_needs_a_live_grant(
    client: TestClient, app: FastAPI, alice: Person, bob: Person
) -> None:
    client.post("/v1/sessions", json=session_body(), headers=alice.headers)
    path = f"/v1/clients/{alice.id}/export.fhir.json"
    assert client.get(path, headers=bob.headers).status_code == 404

    grant_id = grant(app, bob.id, alice.id)
    response = client.get(path, headers=bob.headers)
    assert response.status_code == 200
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert len(bundle["entry"]) == 4
    assert observations(bundle)[0]["subject"]["display"] == "Alice"

    revoke(app, grant_id)
    gone = client.get(path, headers=bob.headers)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    # A client who never granted anything, and someone who does not exist: the same 404.
    assert (
        client.get(f"/v1/clients/{bob.id}/export.fhir.json", headers=alice.headers).status_code
        == 404
    )
    assert (
        client.get(f"/v1/clients/{uuid.uuid4()}/export.fhir.json", headers=bob.headers).status_code
        == 404
    )


def test_export_needs_credentials(client: TestClient) -> None:
    assert client.get("/v1/export.fhir.json").status_code == 401


def test_a_streamed_export_of_several_batches_validates(
    client: TestClient, app: FastAPI, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of 2 sessions: 5 sessions are written as 3 batches of entries, joined into one
    # Bundle that fhir.resources accepts, with every observation once.
    monkeypatch.setattr(app_state(app).settings, "export_batch_sessions", 2)
    ids = []
    for day in range(1, 6):
        body = session_body(started_at=f"2026-10-0{day}T08:00:00Z", ended_at=None)
        assert client.post("/v1/sessions", json=body, headers=alice.headers).status_code == 201
        ids.append(body["id"])
    bundle = client.get("/v1/export.fhir.json", headers=alice.headers).json()
    parsed = Bundle.model_validate(bundle)
    assert len(parsed.entry) == 5 * 4
    exported = [o["identifier"][0]["value"] for o in observations(bundle)]
    assert exported == [f"urn:uuid:{session_id}" for session_id in ids for _ in range(4)]


def test_from_and_to_select_sessions_by_started_at(client: TestClient, alice: Person) -> None:
    for day in ("01", "02", "03"):
        body = session_body(started_at=f"2026-10-{day}T08:00:00Z", ended_at=None)
        assert client.post("/v1/sessions", json=body, headers=alice.headers).status_code == 201
    response = client.get(
        "/v1/export.fhir.json",
        params={"from": "2026-10-02T08:00:00Z", "to": "2026-10-03T07:59:59Z"},
        headers=alice.headers,
    )
    assert response.status_code == 200
    found = observations(response.json())
    assert {o["effectiveDateTime"] for o in found} == {"2026-10-02T08:00:00Z"}
    bad = client.get("/v1/export.fhir.json", params={"from": "yesterday"}, headers=alice.headers)
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


def test_nobody_is_their_own_client(client: TestClient, alice: Person) -> None:
    client.post("/v1/sessions", json=session_body(), headers=alice.headers)
    for export in ("export.fhir.json", "export.csv"):
        response = client.get(f"/v1/clients/{alice.id}/{export}", headers=alice.headers)
        assert response.status_code == 404, export
