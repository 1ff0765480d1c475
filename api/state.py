"""The application's state: what one app instance holds for its whole life, typed."""

from dataclasses import dataclass

from sqlalchemy import Engine
from starlette.applications import Starlette

from api.config import Settings
from api.gate import DatabaseGate
from api.services.ratelimit import LoginLimiter
from api.services.sessions import SessionCreates


@dataclass(frozen=True)
class AppState:
    settings: Settings
    engine: Engine
    gate: DatabaseGate  # every request's turn at the database
    session_creates: SessionCreates  # single creates, group-committed
    login_limiter: LoginLimiter


def app_state(app: Starlette) -> AppState:
    """The state create_app gave `app` (a FastAPI app, or a request's `request.app`)."""
    state: AppState = app.state.releaselog
    return state
