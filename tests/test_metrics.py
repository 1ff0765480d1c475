"""Prometheus metrics at /metrics: the counters move."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.services.webhook_worker import deliver_due
from api.state import app_state
from tests.conftest import Person
from tests.factories import session_body
from tests.webhook_support import Receiver, grant


def sample(client: TestClient, name: str, **labels: str) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    return 0.0


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "releaselog_http_requests_total" in response.text


def test_requests_are_counted_by_route_template(client: TestClient, alice: Person) -> None:
    labels = {"method": "GET", "route": "/v1/sessions/{session_id}", "status": "404"}
    before = sample(client, "releaselog_http_requests_total", **labels)
    timed = sample(client, "releaselog_http_request_duration_seconds_count", **labels)
    for _ in range(2):
        client.get(f"/v1/sessions/{uuid.uuid4()}", headers=alice.headers)
    assert sample(client, "releaselog_http_requests_total", **labels) == before + 2
    assert sample(client, "releaselog_http_request_duration_seconds_count", **labels) == timed + 2

    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    before = sample(client, "releaselog_http_requests_total", **unmatched)
    client.get(f"/no/such/{uuid.uuid4()}")
    assert sample(client, "releaselog_http_requests_total", **unmatched) == before + 1
    # Raw paths never become labels.
    assert "/v1/sessions/0" not in client.get("/metrics").text.replace("{session_id}", "")


def test_sessions_created_counts_only_new_sessions(client: TestClient, alice: Person) -> None:
    before = sample(client, "releaselog_sessions_created_total")
    body = session_body()
    client.post("/v1/sessions", json=body, headers=alice.headers)
    client.post("/v1/sessions", json=body, headers=alice.headers)  # a replay
    batch = [session_body(), session_body(), body]  # two new, one unchanged
    client.post("/v1/sessions/batch", json={"sessions": batch}, headers=alice.headers)
    # 1 single create + 2 batch creates = 3
    assert sample(client, "releaselog_sessions_created_total") == before + 3


def test_webhook_deliveries_are_counted_by_outcome(
    client: TestClient, app: FastAPI, make_person: Callable[..., Person], alice: Person
) -> None:
    coach = make_person("Coach")
    receiver = Receiver(statuses=[500, 200])
    try:
        hook = client.post("/v1/webhooks", json={"url": receiver.url}, headers=coach.headers)
        assert hook.status_code == 201
        grant(app, coach.id, alice.id)
        retry = sample(client, "releaselog_webhook_delivery_attempts_total", outcome="retry")
        delivered = sample(
            client, "releaselog_webhook_delivery_attempts_total", outcome="delivered"
        )
        client.post("/v1/sessions", json=session_body(), headers=alice.headers)
        start = datetime.now(UTC)
        deliver_due(app_state(app).engine, app_state(app).settings, start)
        deliver_due(app_state(app).engine, app_state(app).settings, start + timedelta(hours=1))
        assert (
            sample(client, "releaselog_webhook_delivery_attempts_total", outcome="retry")
            == retry + 1
        )
        assert (
            sample(client, "releaselog_webhook_delivery_attempts_total", outcome="delivered")
            == delivered + 1
        )
    finally:
        receiver.close()
