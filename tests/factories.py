"""Request bodies for tests."""

import uuid
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
