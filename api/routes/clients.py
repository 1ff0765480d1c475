"""The coach's side: the roster and read-only views of each client's data."""

import uuid

from fastapi import APIRouter, Response, status

from api.analytics import roster
from api.deps import AccountOwner, ClientsReader, SessionDep
from api.openapi import problem_responses
from api.routes.sessions import SessionListQuery
from api.services import coach_views, coaching
from api.services import sessions as session_service
from models.coaching import Roster
from models.release_session import SessionList, SessionPublic

router = APIRouter(prefix="/v1/clients", tags=["clients"])

# 403: an API key without `clients:read` (or the path's own scope). 404: no live grant.
READ_ERRORS = problem_responses(400, 401, 403, 404, 422)


@router.get(
    "",
    response_model=Roster,
    responses=problem_responses(401, 403),
    summary="The coach's roster: every client with a live grant, by display name",
    description="Each client's activity, 28-day pain figures and flags: `inactive_7d` (no "
    "session in 7 days, or none at all), `pain_worsening` (28-day pain trend `worsening`), "
    "`pain_after_higher` (a session in the last 7 days ended with more pain than it began) and "
    "`flagged_7d` (a session in the last 7 days has a worse rating: its improvement, signed so "
    "that positive is better, is at most minus the metric's `mcid_abs`, compared exactly on "
    "the one-decimal values; the rule of `session.flagged`).",
)
def read_roster(caller: ClientsReader, db: SessionDep) -> Roster:
    return roster.roster(db, caller.user_id)


@router.delete(
    "/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
    summary="End the link with a client: every live grant from them is revoked",
)
def drop_client(client_id: uuid.UUID, caller: AccountOwner, db: SessionDep) -> Response:
    coaching.drop_client(db, caller.user_id, client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{client_id}/sessions",
    response_model=SessionList,
    responses=READ_ERRORS,
    summary="A client's sessions, newest first (read-only; same filters as /v1/sessions)",
)
def list_client_sessions(
    client_id: uuid.UUID, caller: ClientsReader, db: SessionDep, query: SessionListQuery
) -> SessionList:
    return coach_views.list_client_sessions(
        db, caller, client_id, query.filters, query.limit, query.cursor
    )


@router.get(
    "/{client_id}/sessions/{session_id}",
    response_model=SessionPublic,
    responses=READ_ERRORS,
    summary="One of a client's sessions (read-only)",
)
def read_client_session(
    client_id: uuid.UUID,
    session_id: uuid.UUID,
    caller: ClientsReader,
    db: SessionDep,
    response: Response,
) -> SessionPublic:
    found = coach_views.get_client_session(db, caller, client_id, session_id)
    response.headers["ETag"] = session_service.etag(found.version)
    return found
