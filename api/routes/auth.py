"""Accounts and authentication: register, token, /v1/me, API keys."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import AccountOwner, CallerDep, Cursor, Limit, SessionDep, SettingsDep
from api.openapi import problem_responses
from api.services import accounts, erasure, passwords
from api.state import app_state
from models.api_key import ApiKeyCreate, ApiKeyCreated, ApiKeyList
from models.user import (
    EMAIL_MAX_LENGTH,
    AccountErasure,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    ResetRequested,
    Token,
    UserCreate,
    UserPublic,
    UserUpdate,
)

router = APIRouter(prefix="/v1", tags=["accounts"])

AUTH_ERRORS = problem_responses(401, 403)


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def registration(data: UserCreate, request: Request) -> accounts.NewAccount:
    """A valid registration, counted per client address (429 over the limit), its password
    hashed: before the request takes its database turn (SessionDep), so a refused one costs
    no turn and the hash holds none."""
    app_state(request.app).login_limiter.hit_registration(_client_address(request))
    return accounts.new_account(data)


class LoginForm(OAuth2PasswordRequestForm):
    """OAuth2's password form, its `username` (an email) at most 320 characters: a longer one
    is refused (422) before the login limiter counts it."""

    def __init__(
        self,
        *,
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        username: Annotated[str, Form(max_length=EMAIL_MAX_LENGTH)],
        password: Annotated[str, Form(json_schema_extra={"format": "password"})],
        scope: Annotated[str, Form()] = "",
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form(json_schema_extra={"format": "password"})] = None,
    ) -> None:
        super().__init__(
            grant_type=grant_type,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id,
            client_secret=client_secret,
        )


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses=problem_responses(400, 409, 413, 422, 429, 503),
    summary="Create an account",
    description="Registrations are limited per client address (`REGISTER_LIMIT_PER_ADDRESS`): "
    "over the limit, 429 with `Retry-After`.",
)
def register(
    account: Annotated[accounts.NewAccount, Depends(registration)], db: SessionDep
) -> UserPublic:
    return accounts.register(db, account)


@router.post(
    "/auth/token",
    response_model=Token,
    responses=problem_responses(400, 401, 413, 422, 429, 503),
    summary="Exchange email and password for an access token (OAuth2 password flow)",
)
def token(
    form: Annotated[LoginForm, Depends()],
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
) -> Token:
    app_state(request.app).login_limiter.hit(form.username, _client_address(request))
    user = accounts.authenticate(db, form.username, form.password)
    return accounts.issue_token(user, settings)


@router.get("/me", response_model=UserPublic, responses=AUTH_ERRORS, summary="The caller's account")
def read_me(caller: CallerDep, db: SessionDep) -> UserPublic:
    return accounts.read_me(db, caller.user_id)


@router.patch(
    "/me",
    response_model=UserPublic,
    responses={**AUTH_ERRORS, **problem_responses(400, 413, 422)},
    summary="Change display name or time zone",
)
def update_me(data: UserUpdate, caller: AccountOwner, db: SessionDep) -> UserPublic:
    return accounts.update_me(db, caller.user_id, data)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **problem_responses(400, 413, 422, 429, 503)},
    summary="Change the password (access token only)",
    description="`current_password` must be right: otherwise 403, and the attempt counts "
    "toward the login limits (429 with `Retry-After` over them). Every access token issued "
    "before the change is refused (401) from then on, this one included; API keys keep "
    "working. The account's email gets a notice.",
)
def change_password(
    data: PasswordChange, caller: AccountOwner, request: Request, db: SessionDep
) -> Response:
    state = app_state(request.app)
    email = accounts.read_me(db, caller.user_id).email
    state.login_limiter.hit(email, _client_address(request))
    passwords.change_password(
        db,
        caller.user_id,
        data.current_password,
        data.new_password,
        state.settings.public_base_url,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


RESET_REQUESTED = ResetRequested(
    detail="If an account exists for this email, a reset link is on its way to it. "
    "The link works once, for 30 minutes."
)


@router.post(
    "/auth/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ResetRequested,
    responses=problem_responses(400, 413, 422, 429, 503),
    summary="Ask for a password reset email (no credential)",
    description="Always 202 with the same body, whether or not an account has this email "
    "(no enumeration). When one has, an email goes to it with a single-use link "
    "`{PUBLIC_BASE_URL}/reset-password?token=...` and the token itself, valid 30 minutes; a "
    "newer request voids older tokens. Limited like login, per account and per address "
    "(429 with `Retry-After`).",
)
def request_password_reset(
    data: PasswordResetRequest, request: Request, db: SessionDep
) -> ResetRequested:
    state = app_state(request.app)
    state.login_limiter.hit_reset(data.email, _client_address(request))
    passwords.request_reset(db, data.email, state.settings.public_base_url)
    return RESET_REQUESTED


@router.post(
    "/auth/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 413, 422, 503),
    summary="Set a new password with a reset token (no credential)",
    description="An unknown, used or expired token: 400. Like a password change, every "
    "access token issued before is refused from then on, and the account gets a notice.",
)
def confirm_password_reset(
    data: PasswordResetConfirm, request: Request, db: SessionDep
) -> Response:
    base_url = app_state(request.app).settings.public_base_url
    passwords.confirm_reset(db, data.token, data.new_password, base_url)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **problem_responses(400, 413, 422, 429, 503)},
    summary="Erase the account and everything of it (access token only)",
    description="With the account's `password` (403 otherwise; the attempt counts toward the "
    "login limits). Erases the account, every session (tombstones too), rating, invite, "
    "grant on either side, API key, webhook and delivery, report link, reset token and "
    "email of the person. Afterwards their tokens and keys answer 401 and the email can "
    "register again. Each coach they had granted gets `grant.ended` with "
    "`reason: account_deleted`.",
)
def erase_me(
    data: AccountErasure, caller: AccountOwner, request: Request, db: SessionDep
) -> Response:
    email = accounts.read_me(db, caller.user_id).email
    app_state(request.app).login_limiter.hit(email, _client_address(request))
    erasure.erase_account(db, caller.user_id, data.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses={**AUTH_ERRORS, **problem_responses(400, 413, 422)},
    summary="Create an API key (the key is shown only once)",
)
def create_api_key(data: ApiKeyCreate, caller: AccountOwner, db: SessionDep) -> ApiKeyCreated:
    return accounts.create_api_key(db, caller.user_id, data)


@router.get(
    "/api-keys",
    response_model=ApiKeyList,
    responses={**AUTH_ERRORS, **problem_responses(400, 422)},
    summary="List the caller's API keys (never shows the keys)",
)
def list_api_keys(
    caller: AccountOwner, db: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> ApiKeyList:
    return accounts.list_api_keys(db, caller.user_id, limit, cursor)


@router.delete(
    "/api-keys/{api_key_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **problem_responses(404, 422)},
    summary="Revoke an API key; it stops working at once",
)
def revoke_api_key(api_key_id: uuid.UUID, caller: AccountOwner, db: SessionDep) -> Response:
    accounts.revoke_api_key(db, caller.user_id, api_key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
