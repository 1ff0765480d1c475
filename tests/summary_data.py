"""Helpers for the summary, roster and export tests: sessions and summaries via the API."""

import uuid
from typing import Any

from fastapi.testclient import TestClient


def rating(
    metric: str = "pain",
    before: float = 6,
    after: float | None = 3,
    region: str = "adductors",
    side: str = "both",
) -> dict[str, Any]:
    return {"region": region, "side": side, "metric": metric, "before": before, "after": after}


def log_session(
    client: TestClient, person: Any, started_at: str, *ratings: dict[str, Any], **fields: Any
) -> str:
    """Create a session through the API (no water or feeling unless given); its id."""
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "started_at": started_at,
        "ratings": list(ratings) or [rating()],
        **fields,
    }
    response = client.post("/v1/sessions", json=body, headers=person.headers)
    assert response.status_code == 201, response.text
    return body["id"]


def summary(client: TestClient, person: Any, path: str = "/v1/summary", **params: Any) -> Any:
    response = client.get(path, params=params, headers=person.headers)
    assert response.status_code == 200, response.text
    return response.json()
