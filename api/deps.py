"""Dependencies shared by the routes: the database session and who the caller is.

Every authentication dependency is named by what it guarantees:

- `CallerDep` (authenticated_caller): an access token or API key whose account exists.
- `reader_with(scope)`: the same, with `scope` (403 without it).
- `writer_with(scope)`: a caller with `scope` whose account the write confirms: an access token
  is checked here without the database (signature, claims, expiry), and the write's own
  transaction locks the account row before it changes anything (sync.reserve_feed_positions,
  401 when the account is gone), which spares every create a read of its own. An API key is
  looked up here, which confirms the account too.
- `AccountOwner`: the account's own access token (not an API key), account existing.

tests/test_auth_everywhere.py enumerates every route and shows a deleted account's token and
key answer 401 on each.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.analytics.periods import SummaryQuery
from api.config import Settings
from api.errors import Forbidden, Unauthorized
from api.services import accounts
from api.services.access import Caller, require_scope
from api.state import AppState, app_state
from models.catalog import MetricSlug, RegionSlug
from models.timestamps import Timestamp
from models.user import TimeZoneName

# Declared as HTTP bearer (not OAuth2): the schema then says exactly which header carries the
# credential, so contract fuzzing can strip or forge it to prove that auth is enforced.
bearer_scheme = HTTPBearer(
    bearerFormat="JWT",
    description="An access token from `POST /v1/auth/token`.",
    auto_error=False,
)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_settings_dep(request: Request) -> Settings:
    return app_state(request.app).settings


async def get_db(request: Request) -> AsyncIterator[Session]:
    # Async so that the wait for the gate (api/gate.py) and the close hold no worker thread.
    state = app_state(request.app)
    async with state.gate.turn(request.scope):
        with Session(state.engine, expire_on_commit=False) as session:
            yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_db)]
# The same, but its turn ends when the route function returns, before the response is sent:
# for downloads, which read their later batches in turns of their own.
BriefSessionDep = Annotated[Session, Depends(get_db, scope="function")]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
ApiKeyDep = Annotated[str | None, Depends(api_key_scheme)]


def _authenticate(
    db: Session,
    settings: Settings,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
) -> Caller:
    """The one place that decides which credential counts; the account must exist."""
    if api_key:
        return accounts.caller_from_api_key(db, api_key)
    if bearer:
        return accounts.caller_from_token(db, bearer.credentials, settings)
    raise Unauthorized()


def authenticated_caller(
    db: SessionDep, settings: SettingsDep, bearer: BearerDep, api_key: ApiKeyDep
) -> Caller:
    return _authenticate(db, settings, bearer, api_key)


CallerDep = Annotated[Caller, Depends(authenticated_caller)]


def reader_with(scope: str, *, brief: bool = False) -> Callable[..., Caller]:
    """A dependency: an authenticated caller whose credential has `scope` (403 otherwise).
    `brief`: read through BriefSessionDep (a download's route)."""
    db_dependency = BriefSessionDep if brief else SessionDep

    def dependency(
        db: db_dependency,  # type: ignore[valid-type]
        settings: SettingsDep,
        bearer: BearerDep,
        api_key: ApiKeyDep,
    ) -> Caller:
        caller = _authenticate(db, settings, bearer, api_key)
        require_scope(caller, scope)
        return caller

    return dependency


def writer_with(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency for writes to the caller's own sessions: a caller with `scope` whose
    account the write confirms in its own transaction (see the module's docstring).

    The credentials are read by calling the same scheme objects rather than declaring them as
    sub-dependencies (each level costs FastAPI's solver work on the hottest routes); the
    dependency carries the security requirement they would have declared, and
    api/openapi.py writes it into the schema of every route that depends on it.
    """

    async def dependency(request: Request) -> Caller:
        bearer = await bearer_scheme(request)
        api_key = await api_key_scheme(request)
        state = app_state(request.app)
        if bearer and not api_key:
            caller = accounts.token_caller(bearer.credentials, state.settings)
        else:  # an API key is looked up: in a worker thread, in the request's turn
            async with state.gate.turn(request.scope):
                caller = await run_in_threadpool(_authenticate_alone, state, bearer, api_key)
        require_scope(caller, scope)
        return caller

    dependency.openapi_security = [  # type: ignore[attr-defined]
        {scheme.scheme_name: []} for scheme in (bearer_scheme, api_key_scheme)
    ]
    return dependency


def _authenticate_alone(
    state: AppState, bearer: HTTPAuthorizationCredentials | None, api_key: str | None
) -> Caller:
    with Session(state.engine) as db:
        return _authenticate(db, state.settings, bearer, api_key)


async def account_owner(caller: CallerDep) -> Caller:
    """Account management needs the person's own token: an API key cannot mint keys."""
    if caller.api_key_id is not None:
        raise Forbidden("Use an access token, not an API key, to manage the account.")
    return caller


AccountOwner = Annotated[Caller, Depends(account_owner)]
SessionsReader = Annotated[Caller, Depends(reader_with("sessions:read"))]
SessionsWriter = Annotated[Caller, Depends(writer_with("sessions:write"))]
SummariesReader = Annotated[Caller, Depends(reader_with("summaries:read"))]
ClientsReader = Annotated[Caller, Depends(reader_with("clients:read"))]

# Every selection of sessions by when they started (lists, exports): `?from=` and `?to=`.
StartedFrom = Annotated[
    Timestamp | None,
    Query(alias="from", description="Sessions with `started_at` at or after this instant."),
]
StartedTo = Annotated[
    Timestamp | None,
    Query(alias="to", description="Sessions with `started_at` at or before this instant."),
]


def time_period(
    started_from: Annotated[
        Timestamp | None,
        Query(alias="from", description="RFC 3339 with an offset; default `to` - 90 days."),
    ] = None,
    started_to: Annotated[
        Timestamp | None, Query(alias="to", description="RFC 3339 with an offset; default now.")
    ] = None,
    tz: Annotated[
        TimeZoneName | None, Query(description="IANA time zone; default the account's.")
    ] = None,
) -> SummaryQuery:
    """A period: `from`, `to` and `tz` (reports; summaries and insights add filters)."""
    return SummaryQuery(started_from, started_to, tz)


TimePeriodDep = Annotated[SummaryQuery, Depends(time_period)]


def period_query(
    period: TimePeriodDep, region: RegionSlug | None = None, metric: MetricSlug | None = None
) -> SummaryQuery:
    """The period and filters of summaries and insights (api/analytics/periods.py)."""
    return replace(period, region=region, metric=metric)


PeriodQueryDep = Annotated[SummaryQuery, Depends(period_query)]

# Every list: `?limit=` 1..200 (default 50) and the opaque `?cursor=` of the previous page.
Limit = Annotated[int, Query(ge=1, le=200, description="Page size, 1..200.")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]
