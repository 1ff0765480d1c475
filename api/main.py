"""The ASGI app: routers, middleware and error handlers."""

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.config import Settings, get_settings, warn_if_insecure
from api.db import create_db_engine, database_gate
from api.errors import install_error_handlers
from api.logs import configure_logging
from api.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from api.openapi import install_openapi
from api.routes import auth, catalog, health, sessions
from api.services.ratelimit import LoginLimiter

DESCRIPTION = """
Track how the body responds to self-myofascial release (SMR): pain, stiffness, mobility and
range of motion before and after each session, and the trends they make.

Errors are RFC 9457 problem details (`application/problem+json`). Authenticate with
`Authorization: Bearer <token>` from `/v1/auth/token`, or `X-API-Key: <key>`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    warn_if_insecure(settings)

    app = FastAPI(title="releaselog", version="1.0.0", description=DESCRIPTION)
    app.state.settings = settings
    app.state.engine = create_db_engine(settings)
    app.state.db_gate = database_gate(settings)
    app.state.login_limiter = LoginLimiter(settings)

    install_error_handlers(app)
    for module in (health, catalog, auth, sessions):
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
    app.add_middleware(RequestContextMiddleware)  # outermost: every answer gets its id
    install_openapi(app)
    return app


app = create_app()
