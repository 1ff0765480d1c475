"""API keys for server-to-server callers (coach dashboards)."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.base import ResponseModel, UTCDateTime, new_id, utc_now

Scope = Literal["sessions:read", "sessions:write", "summaries:read", "clients:read"]
ALL_SCOPES: frozenset[str] = frozenset(
    {"sessions:read", "sessions:write", "summaries:read", "clients:read"}
)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: uuid.UUID = SQLField(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = SQLField(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    name: str = SQLField(max_length=100)
    scopes: str = SQLField(max_length=255)  # space-separated
    # SHA-256 of the key: keys are 256-bit random, so a fast hash is safe and allows lookup.
    key_hash: str = SQLField(max_length=64, unique=True)
    created_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    revoked_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    scopes: list[Scope] = Field(min_length=1, max_length=4)


class ApiKeyPublic(ResponseModel):
    id: uuid.UUID
    name: str
    scopes: list[Scope]
    created_at: datetime


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself. Shown only in this response; store it now.")


class ApiKeyList(ResponseModel):
    items: list[ApiKeyPublic]
    next_cursor: str | None
