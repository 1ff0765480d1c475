"""Coaches and clients: invites and the grants they turn into."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Index
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.base import ResponseModel, UTCDateTime, new_id, utc_now
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


class InvitePublic(ResponseModel):
    code: str
    expires_at: datetime


class GrantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=200)


class GrantPublic(ResponseModel):
    id: uuid.UUID
    coach: PersonRef
    created_at: datetime


class GrantList(ResponseModel):
    items: list[GrantPublic]
    next_cursor: str | None


# --- the coach's roster ------------------------------------------------------------------

RosterFlag = Literal["inactive_7d", "pain_worsening", "pain_after_higher", "flagged_7d"]
PainTrend = Literal["improving", "stable", "worsening"]


class RosterPain(ResponseModel):
    """The client's pain over the last 28 days (null while there is too little to say)."""

    mean_before_28d: float | None = Field(description="Mean pain before sessions, 0..10.")
    mean_change_28d: float | None = Field(description="Mean (after - before); negative is better.")
    trend: PainTrend | None = Field(description="The 28-day pain trend.")


class RosterEntry(ResponseModel):
    client: PersonRef
    granted_at: datetime = Field(description="When the client granted access.")
    last_session_at: datetime | None = Field(description="`started_at` of the latest session.")
    sessions_7d: int = Field(description="Sessions started in the last 7 days.")
    sessions_28d: int = Field(description="Sessions started in the last 28 days.")
    pain: RosterPain
    flags: list[RosterFlag] = Field(
        description="`inactive_7d`: no session in 7 days (or none at all); `pain_worsening`: "
        "28-day pain trend `worsening`; `pain_after_higher`: a session in the last 7 days ended "
        "with more pain than it began; `flagged_7d`: a session in the last 7 days has a worse "
        "rating (its improvement, signed so that positive is better, is at most minus the "
        "metric's `mcid_abs`, compared exactly on the one-decimal values: pain 3 -> 5 is worse, "
        "3 -> 4 is not)."
    )


class Roster(ResponseModel):
    items: list[RosterEntry]
