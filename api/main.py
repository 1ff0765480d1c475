"""The ASGI app: routers, middleware and error handlers."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.config import Settings, get_settings, warn_if_insecure
from api.db import create_db_engine, wal_checkpoint
from api.docs import install_docs
from api.errors import install_error_handlers
from api.gate import database_gate
from api.group_commit import GroupCommit
from api.logs import configure_logging
from api.metrics import MetricsMiddleware
from api.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from api.openapi import install_openapi
from api.routes import (
    auth,
    catalog,
    clients,
    coaching,
    exports,
    health,
    insights,
    metrics,
    pages,
    report_links,
    reports,
    sessions,
    summaries,
    webhooks,
)
from api.services.mail_transport import check_mail_settings
from api.services.mail_worker import MailWorker
from api.services.ratelimit import LoginLimiter
from api.services.sessions import create_sessions
from api.services.webhook_worker import WebhookWorker
from api.state import AppState, app_state

DESCRIPTION = """
Track how the body responds to self-myofascial release (SMR): pain, stiffness, mobility and
range of motion before and after each session, and the trends they make.

Errors are RFC 9457 problem details (`application/problem+json`). Authenticate with
`Authorization: Bearer <token>` from `/v1/auth/token`, or `X-API-Key: <key>`.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app_state(app)
    workers: list[WebhookWorker | MailWorker] = []
    if state.settings.webhook_worker_enabled:
        workers.append(WebhookWorker(state.engine, state.settings))
    if state.settings.mail_worker_enabled:
        workers.append(MailWorker(state.engine, state.settings))
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        await asyncio.gather(*(asyncio.to_thread(worker.stop) for worker in workers))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    warn_if_insecure(settings)
    check_mail_settings(settings)

    app = FastAPI(
        title="releaselog",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=_lifespan,
        # Metrics are Prometheus (/metrics); FastAPI's OpenTelemetry hooks would otherwise look
        # up the global providers on every request (bench/RESULTS.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Served by install_docs, from installed files rather than a CDN.
        docs_url=None,
        redoc_url=None,
    )
    engine = create_db_engine(settings)
    gate = database_gate(settings)
    app.state.releaselog = AppState(
        settings=settings,
        engine=engine,
        gate=gate,
        session_creates=GroupCommit(
            gate,
            partial(create_sessions, engine),
            follow_up=partial(wal_checkpoint, engine) if engine.dialect.name == "sqlite" else None,
        ),
        login_limiter=LoginLimiter(settings),
    )

    install_error_handlers(app)
    # The hot paths first: routes are matched in order.
    routers = (
        sessions,
        summaries,
        insights,
        clients,
        auth,
        health,
        catalog,
        coaching,
        webhooks,
        exports,
        metrics,
        pages,
        reports,
        report_links,
    )
    for module in routers:
        app.include_router(module.router)

    app.add_middleware(SecurityHeadersMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-API-Key"],
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID"],
        )
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestContextMiddleware)  # outermost: every answer gets its id
    install_openapi(app)
    install_docs(app)
    return app


app = create_app()
