"""Coaches and clients: invites and the grants they turn into."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Index
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.base import UTCDateTime, new_id, utc_now
from models.user import PersonRef


class Invite(SQLModel, table=True):
    __tablename__ = "invite"

    id: uuid.UUID = SQLField(default_factory=new_id, primary_key=True)
    coach_id: uuid.UUID = SQLField(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    # SHA-256 of the code: a leaked database does not hand out live invites.
    code_hash: str = SQLField(max_length=64, unique=True)
    created_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    expires_at: datetime = SQLField(sa_type=UTCDateTime)
    redeemed_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    redeemed_by_id: uuid.UUID | None = SQLField(
        default=None, foreign_key="user_account.id", ondelete="SET NULL"
    )


class Grant(SQLModel, table=True):
    """A client's permission for a coach to read their data, live until revoked."""

    __tablename__ = "coach_grant"
    __table_args__ = (
        Index("ix_coach_grant_coach_client", "coach_id", "client_id"),
        Index("ix_coach_grant_client", "client_id"),
    )

    id: uuid.UUID = SQLField(default_factory=new_id, primary_key=True)
    coach_id: uuid.UUID = SQLField(foreign_key="user_account.id", ondelete="CASCADE")
    client_id: uuid.UUID = SQLField(foreign_key="user_account.id", ondelete="CASCADE")
    created_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    revoked_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)


class InvitePublic(BaseModel):
    code: str
    expires_at: datetime


class GrantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=200)


class GrantPublic(BaseModel):
    id: uuid.UUID
    coach: PersonRef
    created_at: datetime


class GrantList(BaseModel):
    items: list[GrantPublic]
