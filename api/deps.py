"""Dependencies shared by the routes: the database session and the authenticated caller."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.config import Settings
from api.db import run_write
from api.errors import Forbidden, Unauthorized
from api.services import accounts
from api.services.access import Caller, require_scope

T = TypeVar("T")

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


async def get_db(request: Request) -> AsyncIterator[Session]:
    # Async so that the wait for the gate (api/db.py) and the close hold no worker thread.
    async with request.app.state.db_gate.turn(request.scope):
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_db)]


async def run_session_write(request: Request, write: Callable[..., T], *args: Any) -> T:
    """`write(engine, *args)` through db.run_write, with the request's engine and turn."""
    state = request.app.state
    return await run_write(state.engine, state.db_gate, request.scope, write, *args)


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


def _authenticate_alone(
    request: Request, bearer: HTTPAuthorizationCredentials | None, api_key: str | None
) -> Caller:
    with Session(request.app.state.engine) as db:
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
    write itself confirms the account, in its own transaction (sync.next_feed_seq). Any other
    credential goes through _authenticate, in a worker thread, in the request's database turn
    (an API key is looked up).

    The credentials are read by the same scheme objects, called here rather than declared as
    sub-dependencies: each level of dependency costs FastAPI's solver work on every request
    (measured: about 7 % of a create's instructions for these two). The dependency carries
    the security requirement those sub-dependencies would have declared, and api/openapi.py
    writes it into the schema of every route that depends on it.
    """

    async def dependency(request: Request) -> Caller:
        bearer = await bearer_scheme(request)
        api_key = await api_key_scheme(request)
        if bearer and not api_key:
            caller = accounts.claimed_caller(bearer.credentials, request.app.state.settings)
        else:  # the one place that decides which credential counts, and refuses none
            async with request.app.state.db_gate.turn(request.scope):
                caller = await run_in_threadpool(_authenticate_alone, request, bearer, api_key)
        require_scope(caller, scope)
        return caller

    dependency.openapi_security = [  # type: ignore[attr-defined]
        {scheme.scheme_name: []} for scheme in (bearer_scheme, api_key_scheme)
    ]
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
