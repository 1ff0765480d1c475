"""Accounts: registration, login, the caller's profile, API keys."""

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api.config import Settings, signing_key
from api.db import write_transaction
from api.errors import INVALID_TOKEN, Conflict, NotFound, Unauthorized
from api.security import (
    create_access_token,
    decode_access_token,
    hash_password,
    hash_secret,
    new_api_key,
    verify_password,
)
from api.services import pagination
from api.services.access import Caller
from models.api_key import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyPublic
from models.base import new_id, utc_now
from models.user import Token, User, UserCreate, UserPublic, UserUpdate

# Every authenticated request runs this: a prebuilt Core statement, no ORM object.
_USER_TABLE = User.__table__  # type: ignore[attr-defined]
_TOKEN_VERSION = sa_select(_USER_TABLE.c.token_version).where(_USER_TABLE.c.id == bindparam("id"))


def public_user(user: User) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


@dataclass(frozen=True)
class NewAccount:
    """A registration, worked out before it reaches the database (see new_account)."""

    email: str  # lower-cased
    password_hash: str
    display_name: str
    timezone: str
    # Chosen here rather than by the table's default, so that a caller can fix it (the demo
    # accounts' ids are deterministic: api/services/demo.py).
    id: uuid.UUID = field(default_factory=new_id)


def new_account(data: UserCreate) -> NewAccount:
    """The account a registration stores, its password hashed. Called before the write
    transaction: an Argon2 hash takes tens of milliseconds, which no write lock waits on."""
    return NewAccount(
        email=data.email.lower(),
        password_hash=hash_password(data.password),
        display_name=data.display_name,
        timezone=data.timezone,
    )


def register(db: Session, account: NewAccount) -> UserPublic:
    with write_transaction(db):
        if db.exec(select(User.id).where(User.email == account.email)).first() is not None:
            raise Conflict("An account with this email already exists.")
        user = User(
            id=account.id,
            email=account.email,
            password_hash=account.password_hash,
            display_name=account.display_name,
            timezone=account.timezone,
        )
        db.add(user)
        try:
            db.commit()
        except IntegrityError:
            db.rollback()
            raise Conflict("An account with this email already exists.") from None
        return public_user(user)


def authenticate(db: Session, email: str, password: str) -> User:
    user = db.exec(select(User).where(User.email == email.lower())).first()
    # Always verify a hash, so an unknown email costs as much as a wrong password.
    if not verify_password(password, user.password_hash if user else None) or user is None:
        raise Unauthorized("Incorrect email or password.")
    return user


def issue_token(user: User, settings: Settings) -> Token:
    lifetime = timedelta(minutes=settings.access_token_expire_minutes)
    token = create_access_token(user.id, signing_key(settings), lifetime, user.token_version)
    return Token(access_token=token, token_type="bearer", expires_in=int(lifetime.total_seconds()))


def token_caller(token: str, settings: Settings) -> Caller:
    """The caller an access token names, checked without the database: signature, claims,
    expiry. A token outlives a deleted account: caller_from_token also confirms the account,
    and a write confirms it when it locks the account row (deps.writer_with)."""
    decoded = decode_access_token(token, signing_key(settings))
    if decoded is None:
        raise Unauthorized(INVALID_TOKEN)
    user_id, version = decoded
    return Caller(user_id=user_id, token_version=version)


def caller_from_token(db: Session, token: str, settings: Settings) -> Caller:
    caller = token_caller(token, settings)
    row = db.connection().execute(_TOKEN_VERSION, {"id": caller.user_id}).first()
    if row is None or row[0] != caller.token_version:
        # the token of a deleted account, or one issued before a password change
        raise Unauthorized(INVALID_TOKEN)
    return caller


def caller_from_api_key(db: Session, key: str) -> Caller:
    row = db.exec(
        select(ApiKey.id, ApiKey.user_id, ApiKey.scopes)
        .join(User, User.id == ApiKey.user_id)  # type: ignore[arg-type]
        .where(ApiKey.key_hash == hash_secret(key), ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if row is None:
        raise Unauthorized("Invalid or revoked API key.")
    key_id, user_id, scopes = row
    return Caller(user_id=user_id, scopes=frozenset(scopes.split()), api_key_id=key_id)


def _account(db: Session, user_id: uuid.UUID) -> User:
    user = db.get(User, user_id)
    if user is None:  # deleted since the credential was checked
        raise Unauthorized(INVALID_TOKEN)
    return user


def read_me(db: Session, user_id: uuid.UUID) -> UserPublic:
    return public_user(_account(db, user_id))


def update_me(db: Session, user_id: uuid.UUID, data: UserUpdate) -> UserPublic:
    with write_transaction(db):
        user = _account(db, user_id)
        for name, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
            setattr(user, name, value)
        db.add(user)
        db.commit()
        return public_user(user)


def _public_key(api_key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=api_key.id,
        name=api_key.name,
        scopes=api_key.scopes.split(),  # type: ignore[arg-type]
        created_at=api_key.created_at,
    )


def create_api_key(db: Session, user_id: uuid.UUID, data: ApiKeyCreate) -> ApiKeyCreated:
    with write_transaction(db):
        key = new_api_key()
        scopes = sorted(set(data.scopes))
        api_key = ApiKey(
            user_id=user_id, name=data.name, scopes=" ".join(scopes), key_hash=hash_secret(key)
        )
        db.add(api_key)
        db.commit()
        return ApiKeyCreated(**_public_key(api_key).model_dump(), key=key)


def list_api_keys(db: Session, user_id: uuid.UUID, limit: int, cursor: str | None) -> ApiKeyList:
    """The user's live keys, oldest first (the keys themselves are never shown again)."""
    statement = select(ApiKey).where(
        ApiKey.user_id == user_id,
        ApiKey.revoked_at.is_(None),  # type: ignore[union-attr]
    )
    statement = pagination.after(statement, ApiKey.created_at, ApiKey.id, cursor)
    rows = list(
        db.exec(statement.order_by(ApiKey.created_at, ApiKey.id).limit(limit + 1))  # type: ignore[arg-type]
    )
    return ApiKeyList(
        items=[_public_key(row) for row in rows[:limit]],
        next_cursor=pagination.next_cursor([(row.created_at, row.id) for row in rows], limit),
    )


def revoke_api_key(db: Session, user_id: uuid.UUID, key_id: uuid.UUID) -> None:
    with write_transaction(db):
        api_key = db.get(ApiKey, key_id)
        if api_key is None or api_key.user_id != user_id or api_key.revoked_at is not None:
            raise NotFound("No such API key.")
        api_key.revoked_at = utc_now()
        db.add(api_key)
        db.commit()
