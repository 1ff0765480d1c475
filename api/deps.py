"""Dependencies shared by the routes: the database session and the authenticated caller."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.config import Settings
from api.errors import Forbidden, Unauthorized
from api.services import accounts
from api.services.access import Caller, require_scope

# Declared as HTTP bearer (not OAuth2): the schema then says exactly which header carries the
# credential, so contract fuzzing can strip or forge it to prove that auth is enforced.
bearer_scheme = HTTPBearer(
    bearerFormat="JWT",
    description="An access token from `POST /v1/auth/token`.",
    auto_error=False,
)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def database_turn(request: Request) -> AsyncIterator[Engine]:
    """The request's turn at the database (the gate, api/db.py), held until its response:
    the engine, for services that open their own connections (the session writes, on the
    driver). One turn per request, however many dependencies ask for it (FastAPI caches it
    per request): a request holding one turn and waiting for a second could deadlock.
    Async so that the wait holds no worker thread."""
    async with request.app.state.db_gate.semaphore():
        yield request.app.state.engine


EngineDep = Annotated[Engine, Depends(database_turn)]


async def get_db(engine: EngineDep) -> AsyncIterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_db)]


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
ApiKeyDep = Annotated[str | None, Depends(api_key_scheme)]


def _authenticate(
    db: Session, request: Request, bearer: HTTPAuthorizationCredentials | None, api_key: str | None
) -> Caller:
    if api_key:
        return accounts.caller_from_api_key(db, api_key)
    if bearer:
        return accounts.caller_from_token(db, bearer.credentials, request.app.state.settings)
    raise Unauthorized()


def _authenticate_with(
    engine: Engine,
    request: Request,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
) -> Caller:
    with Session(engine) as db:
        return _authenticate(db, request, bearer, api_key)


def get_caller(db: SessionDep, request: Request, bearer: BearerDep, api_key: ApiKeyDep) -> Caller:
    return _authenticate(db, request, bearer, api_key)


CallerDep = Annotated[Caller, Depends(get_caller)]


def scoped(scope: str) -> Callable[..., Caller]:
    """A dependency: the caller, refused with 403 when their credential lacks `scope`.

    It authenticates itself rather than depending on get_caller: every level of dependency
    costs FastAPI work on each request, and these guard the hottest routes.
    """

    def dependency(
        db: SessionDep, request: Request, bearer: BearerDep, api_key: ApiKeyDep
    ) -> Caller:
        caller = _authenticate(db, request, bearer, api_key)
        require_scope(caller, scope)
        return caller

    return dependency


def claimed(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency for writes to the caller's sessions: the caller as their credential names
    them, refused with 403 when it lacks `scope`, without a worker thread of its own.

    An access token is checked here without the database (signature, claims, expiry); the
    write itself confirms the account, in its own transaction (sync.next_feed_seq), so the
    request needs one thread-pool hop in all. Any other credential goes through
    _authenticate (an API key is looked up: a hop of its own).
    """

    async def dependency(
        engine: EngineDep, request: Request, bearer: BearerDep, api_key: ApiKeyDep
    ) -> Caller:
        if bearer and not api_key:
            caller = accounts.claimed_caller(bearer.credentials, request.app.state.settings)
        else:  # the one place that decides which credential counts, and refuses none
            caller = await run_in_threadpool(_authenticate_with, engine, request, bearer, api_key)
        require_scope(caller, scope)
        return caller

    return dependency


async def _account_owner(caller: CallerDep) -> Caller:
    """Account management needs the person's own token: an API key cannot mint keys."""
    if caller.api_key_id is not None:
        raise Forbidden("Use an access token, not an API key, to manage the account.")
    return caller


AccountOwner = Annotated[Caller, Depends(_account_owner)]
SessionsReader = Annotated[Caller, Depends(scoped("sessions:read"))]
SessionsWriter = Annotated[Caller, Depends(claimed("sessions:write"))]
SummariesReader = Annotated[Caller, Depends(scoped("summaries:read"))]
ClientsReader = Annotated[Caller, Depends(scoped("clients:read"))]

# Every list: `?limit=` 1..200 (default 50) and the opaque `?cursor=` of the previous page.
Limit = Annotated[int, Query(ge=1, le=200, description="Page size, 1..200.")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]
