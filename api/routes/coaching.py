"""Invites and grants: how a client lets a coach read their data, and takes it back."""

import uuid

from fastapi import APIRouter, Response, status

from api.deps import AccountOwner, Cursor, Limit, SessionDep
from api.openapi import problem_responses
from api.services import coaching as service
from models.coaching import GrantCreate, GrantList, GrantPublic, InvitePublic

router = APIRouter(prefix="/v1", tags=["coaching"])

# 403: these manage the account, so they need an access token (an API key is refused).
AUTH_ERRORS = problem_responses(401, 403)


@router.post(
    "/invites",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitePublic,
    responses=AUTH_ERRORS,
    summary="Create an invite code for a client (single use, valid for 7 days)",
)
def create_invite(caller: AccountOwner, db: SessionDep) -> InvitePublic:
    return service.create_invite(db, caller.user_id)


@router.post(
    "/grants",
    status_code=status.HTTP_201_CREATED,
    response_model=GrantPublic,
    responses={**AUTH_ERRORS, **problem_responses(400, 404, 409, 413, 422)},
    summary="Redeem a coach's invite code: the coach may read your data until revoked",
    description="An unknown, used or expired code, or your own, is 404 and changes nothing. "
    "When the coach already has a live grant from you, 409 and the code stays unused.",
)
def create_grant(data: GrantCreate, caller: AccountOwner, db: SessionDep) -> GrantPublic:
    return service.redeem_invite(db, caller.user_id, data.code)


@router.get(
    "/grants",
    response_model=GrantList,
    responses={**AUTH_ERRORS, **problem_responses(400, 422)},
    summary="The coaches who may read your data (live grants, oldest first)",
)
def list_grants(
    caller: AccountOwner, db: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> GrantList:
    return service.list_grants(db, caller.user_id, limit, cursor)


@router.delete(
    "/grants/{grant_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **problem_responses(404, 422)},
    summary="Revoke a grant: the coach's access ends at once",
)
def revoke_grant(grant_id: uuid.UUID, caller: AccountOwner, db: SessionDep) -> Response:
    service.revoke_grant(db, caller.user_id, grant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
