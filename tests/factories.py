"""Request bodies for tests."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def session_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "started_at": "2026-11-20T07:30:00+01:00",
        "ended_at": "2026-11-20T07:45:00+01:00",
        "tool": "foam_roller",
        "water_before_ml": 400,
        "water_after_ml": 350,
        "felt_unwell_after": False,
        "notes": "left side tender near the knee",
        "ratings": [
            {"region": "adductors", "side": "left", "metric": "pain", "before": 6, "after": 3},
            {"region": "adductors", "side": "left", "metric": "rom", "before": 35, "after": 42},
        ],
    }
    body.update(overrides)
    return body


def session_days_ago(http: Any, person: Any, days_ago: float, **overrides: Any) -> dict[str, Any]:
    """Create one of `person`'s sessions, started `days_ago` days ago; returns it."""
    started_at = datetime.now(UTC) - timedelta(days=days_ago)
    body = session_body(started_at=started_at.isoformat(), ended_at=None, **overrides)
    response = http.post("/v1/sessions", json=body, headers=person.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def link(http: Any, coach: Any, person: Any) -> dict[str, Any]:
    """`coach` invites, `person` redeems: returns the grant (the person becomes a client)."""
    invite = http.post("/v1/invites", headers=coach.headers)
    assert invite.status_code == 201, invite.text
    grant = http.post("/v1/grants", json={"code": invite.json()["code"]}, headers=person.headers)
    assert grant.status_code == 201, grant.text
    body: dict[str, Any] = grant.json()
    return body


def api_key(http: Any, owner: Any, *scopes: str) -> tuple[dict[str, str], str]:
    """(headers, key id) of a new API key of `owner` with `scopes`."""
    created = http.post(
        "/v1/api-keys", json={"name": "dashboard", "scopes": list(scopes)}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    return {"X-API-Key": created.json()["key"]}, created.json()["id"]
