"""The caller's own release sessions, and the sync feed."""

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from api.deps import (
    Cursor,
    Limit,
    SessionDep,
    SessionsReader,
    SessionsWriter,
    StartedFrom,
    StartedTo,
)
from api.openapi import problem_responses
from api.responses import model_json
from api.services import sessions as service
from api.services import sync
from api.state import app_state
from models.catalog import MetricSlug, RegionSlug
from models.release_session import (
    BatchRequest,
    BatchResponse,
    ChangeFeed,
    SessionCreate,
    SessionList,
    SessionPublic,
    SessionUpdate,
)

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

READ_ERRORS = problem_responses(400, 401, 403, 422)
WRITE_ERRORS = problem_responses(400, 401, 403, 413, 422)
IfMatch = Annotated[
    str | None,
    Header(
        description="An ETag from a previous read; a stale one answers 412 and changes nothing."
    ),
]


@dataclass(frozen=True)
class SessionListParams:
    filters: service.SessionFilters
    limit: int
    cursor: str | None


def _session_list_params(
    started_from: StartedFrom = None,
    started_to: StartedTo = None,
    region: Annotated[
        RegionSlug | None, Query(description="Sessions that rated this region.")
    ] = None,
    metric: Annotated[
        MetricSlug | None, Query(description="Sessions that rated this metric.")
    ] = None,
    complete: Annotated[
        bool | None, Query(description="Only complete (or only incomplete) sessions.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SessionListParams:
    filters = service.SessionFilters(started_from, started_to, region, metric, complete)
    return SessionListParams(filters=filters, limit=limit, cursor=cursor)


# The query of every session list (the caller's own, a coach's view of a client's): the same
# filters, pagination and documentation everywhere.
SessionListQuery = Annotated[SessionListParams, Depends(_session_list_params)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionPublic,
    responses={
        200: {
            "model": SessionPublic,
            "description": "Replay of an earlier create: the stored session.",
        },
        **WRITE_ERRORS,
        **problem_responses(409),
    },
    summary="Create a session (idempotent with a client-chosen id)",
)
async def create_session(data: SessionCreate, caller: SessionsWriter, request: Request) -> Response:
    creates = app_state(request.app).session_creates
    created, is_new = await service.create_session(
        creates, caller.user_id, data, caller.token_version
    )
    headers = {"Location": f"/v1/sessions/{created.id}", "ETag": service.etag(created.version)}
    return model_json(created, status.HTTP_201_CREATED if is_new else status.HTTP_200_OK, headers)


@router.post(
    "/batch",
    response_model=BatchResponse,
    response_model_exclude_none=True,
    responses=WRITE_ERRORS,
    summary="Create up to 500 sessions; per-item results in input order",
)
def create_batch(data: BatchRequest, caller: SessionsWriter, db: SessionDep) -> Response:
    results = service.create_batch(db, caller.user_id, data.sessions, caller.token_version)
    return model_json(BatchResponse(results=results), exclude_none=True)


@router.get(
    "",
    response_model=SessionList,
    responses=READ_ERRORS,
    summary="List sessions, newest first",
)
def list_sessions(caller: SessionsReader, db: SessionDep, query: SessionListQuery) -> SessionList:
    return service.list_sessions(db, caller.user_id, query.filters, query.limit, query.cursor)


@router.get(
    "/changes",
    response_model=ChangeFeed,
    responses={**READ_ERRORS, **problem_responses(410)},
    summary="The sync feed: changes after `since`, oldest first",
)
def changes(
    caller: SessionsReader,
    db: SessionDep,
    since: Annotated[
        str, Query(max_length=200, description="Opaque token; empty = from the beginning.")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ChangeFeed:
    return sync.change_feed(db, caller.user_id, since, limit)


@router.get(
    "/{session_id:uuid}",
    response_model=SessionPublic,
    responses={**READ_ERRORS, **problem_responses(404)},
    summary="One session",
)
def read_session(
    session_id: uuid.UUID, caller: SessionsReader, db: SessionDep, response: Response
) -> SessionPublic:
    found = service.get_session(db, caller.user_id, session_id)
    response.headers["ETag"] = service.etag(found.version)
    return found


@router.patch(
    "/{session_id:uuid}",
    response_model=SessionPublic,
    responses={**WRITE_ERRORS, **problem_responses(404, 412)},
    summary="Merge-patch a session; `ratings`, when given, replaces the list",
)
def update_session(
    session_id: uuid.UUID,
    data: SessionUpdate,
    caller: SessionsWriter,
    db: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> SessionPublic:
    updated = service.update_session(
        db, caller.user_id, session_id, data, if_match, caller.token_version
    )
    response.headers["ETag"] = service.etag(updated.version)
    return updated


@router.delete(
    "/{session_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**problem_responses(400, 401, 403, 404, 412, 422)},
    summary="Delete a session (it shows as deleted in the sync feed)",
)
def delete_session(
    session_id: uuid.UUID, caller: SessionsWriter, db: SessionDep, if_match: IfMatch = None
) -> Response:
    service.delete_session(db, caller.user_id, session_id, if_match, caller.token_version)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
