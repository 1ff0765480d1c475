"""Prometheus metrics: the collectors, the ASGI middleware that times requests, the exposition.

Multi-process mode: with several worker processes (uvicorn --workers, gunicorn), set
PROMETHEUS_MULTIPROC_DIR to an empty directory writable by every worker (wiped at each
deployment). prometheus_client then keeps every process's values in files there, and
`render()` aggregates them all, whichever process answers the scrape.
"""

import os
import re
import time
from functools import lru_cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "releaselog_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "releaselog_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SESSIONS_CREATED = Counter(
    "releaselog_sessions_created_total",
    "Release sessions created (idempotent replays not counted).",
)
WEBHOOK_DELIVERIES = Counter(
    "releaselog_webhook_delivery_attempts_total",
    "Webhook delivery attempts by outcome: delivered (2xx), retry (will be retried), "
    "failed (gave up after the retry window), cancelled (grant ended or session deleted; not "
    "sent).",
    ["outcome"],
)
for _outcome in ("delivered", "retry", "failed", "cancelled"):
    WEBHOOK_DELIVERIES.labels(outcome=_outcome)
EMAIL_SEND_ATTEMPTS = Counter(
    "releaselog_email_send_attempts_total",
    "Email send attempts by outcome: sent (accepted by the SMTP server), retry (will be "
    "retried), failed (refused for good, or gave up after the retry window), logged (SMTP_URL "
    "unset: written to the log, not sent).",
    ["outcome"],
)
for _outcome in ("sent", "retry", "failed", "logged"):
    EMAIL_SEND_ATTEMPTS.labels(outcome=_outcome)

# The database gate (api/gate.py). With several processes, the gauges add up across them.
DB_TURNS = Gauge(
    "releaselog_db_turns",
    "Requests this process lets at the database at once (the gate's size).",
    multiprocess_mode="livesum",
)
DB_TURNS_IN_USE = Gauge(
    "releaselog_db_turns_in_use",
    "Database turns held right now.",
    multiprocess_mode="livesum",
)
DB_TURNS_WAITING = Gauge(
    "releaselog_db_turns_waiting",
    "Requests waiting for a database turn right now.",
    multiprocess_mode="livesum",
)
DB_TURN_WAIT = Histogram(
    "releaselog_db_turn_wait_seconds",
    "How long a request waited for a database turn, counting only requests that found every "
    "turn held (a free turn is taken without waiting).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_TURN_TIMEOUTS = Counter(
    "releaselog_db_turn_timeouts_total",
    "Requests answered 503 because no database turn came free within DB_TURN_TIMEOUT_SECONDS.",
)

UNMATCHED_ROUTE = "unmatched"
# "{session_id:uuid}" is published as "{session_id}": the template, without its converter.
_CONVERTER = re.compile(r":[a-z]+}")


@lru_cache(maxsize=1024)
def _series(method: str, path: str | None, status: int) -> tuple[Counter, Histogram]:
    """The (count, latency) series of one method, route and status: looked up once.

    The key is bounded: route templates, not raw paths (methods and statuses are few)."""
    template = _CONVERTER.sub("}", path or UNMATCHED_ROUTE)
    labels = {"method": method, "route": template, "status": str(status)}
    return HTTP_REQUESTS.labels(**labels), HTTP_LATENCY.labels(**labels)


def render() -> tuple[bytes, str]:
    """The exposition body and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (never the raw path, whose
    ids would make the label set unbounded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            count, latency = _series(
                scope["method"], getattr(scope.get("route"), "path", None), status
            )
            count.inc()
            latency.observe(time.perf_counter() - started)
