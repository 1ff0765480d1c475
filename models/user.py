"""Accounts: the person (client or coach) behind every request."""

import uuid
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)
from sqlalchemy import Column, Integer
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.base import ResponseModel, UTCDateTime, new_id, utc_now


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def check_timezone(name: str) -> str:
    if name not in _timezones():
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'")
    return name


TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(check_timezone)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# RFC 5321's longest address (64 + 1 + 255), and the column's size. A longer one is refused
# before anything parses, counts or stores it.
EMAIL_MAX_LENGTH = 320


def _bounded_email(value: object) -> object:
    if isinstance(value, str) and len(value) > EMAIL_MAX_LENGTH:
        raise ValueError(f"an email address has at most {EMAIL_MAX_LENGTH} characters")
    return value


Email = Annotated[EmailStr, BeforeValidator(_bounded_email), Field(max_length=EMAIL_MAX_LENGTH)]
# The upper bound keeps one Argon2 hash from becoming a denial-of-service lever.
Password = Annotated[str, StringConstraints(min_length=10, max_length=1024)]


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: uuid.UUID = SQLField(default_factory=new_id, primary_key=True)
    email: str = SQLField(max_length=320, unique=True)  # stored lower-cased
    password_hash: str = SQLField(max_length=255)
    display_name: str = SQLField(max_length=100)
    timezone: str = SQLField(default="UTC", max_length=64)
    created_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    # Position of the person's latest change in their sync feed. Every write to their
    # sessions increments it under this row's lock (see api/services/sync.py).
    feed_seq: int = SQLField(default=0, sa_column=Column(Integer, nullable=False, default=0))
    # Tombstones up to this feed position have been purged; older tokens get 410.
    feed_purged_seq: int = SQLField(default=0, sa_column=Column(Integer, nullable=False, default=0))
    # Bumped by every password change or reset: an access token carries the version it was
    # issued under (claim `ver`) and is refused once it differs. API keys do not depend on it.
    token_version: int = SQLField(
        default=0, sa_column=Column(Integer, nullable=False, default=0, server_default="0")
    )


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    display_name: DisplayName
    timezone: TimeZoneName = "UTC"


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    timezone: TimeZoneName | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    new_password: Password


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    new_password: Password


class ResetRequested(ResponseModel):
    """The one answer to a reset request, whether or not the account exists."""

    detail: str


class AccountErasure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class UserPublic(ResponseModel):
    id: uuid.UUID
    email: str
    display_name: str
    timezone: str
    created_at: datetime


class PersonRef(ResponseModel):
    """How one person appears inside another's data (a coach in a grant, a client in a roster)."""

    id: uuid.UUID
    display_name: str


class Token(ResponseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
