"""Report links: a person shares the report of a fixed period with someone who has no account
(a physiotherapist). The link's token is only ever in the creation's answer; the row keeps its
SHA-256."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.base import ResponseModel, UTCDateTime, new_id, utc_now
from models.timestamps import Timestamp
from models.user import TimeZoneName

DEFAULT_LIFETIME_DAYS = 14
MAX_LIFETIME_DAYS = 90


class ReportLink(SQLModel, table=True):
    """The period is fixed when the link is made (`to` defaults to that moment); the figures
    are computed from the person's data as it is when the link is opened."""

    __tablename__ = "report_link"

    id: uuid.UUID = SQLField(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = SQLField(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    # Tokens are 256-bit random, so a fast hash is safe and allows lookup.
    token_hash: str = SQLField(max_length=64, unique=True)
    period_from: datetime = SQLField(sa_type=UTCDateTime)
    period_to: datetime = SQLField(sa_type=UTCDateTime)
    tz: str = SQLField(max_length=64)
    expires_at: datetime = SQLField(sa_type=UTCDateTime)
    created_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)


class ReportLinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_from: Timestamp | None = Field(
        default=None, alias="from", description="Start of the period; default `to` - 90 days."
    )
    period_to: Timestamp | None = Field(
        default=None, alias="to", description="End of the period; default the link's creation."
    )
    tz: TimeZoneName | None = Field(
        default=None, description="IANA time zone of the report; default the account's."
    )
    expires_in_days: Annotated[int, Field(ge=1, le=MAX_LIFETIME_DAYS)] = Field(
        default=DEFAULT_LIFETIME_DAYS, description="The link works for this many days, 1..90."
    )


class ReportLinkPeriod(ResponseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from", description="Start of the period (inclusive), UTC.")
    to: datetime = Field(description="End of the period (inclusive), UTC.")
    tz: str = Field(description="The IANA time zone of the report.")


class ReportLinkPublic(ResponseModel):
    id: uuid.UUID
    period: ReportLinkPeriod
    expires_at: datetime
    created_at: datetime


class ReportLinkCreated(ResponseModel):
    id: uuid.UUID
    url: str = Field(
        description="`{PUBLIC_BASE_URL}/r/<token>`: opens the report without any other "
        "credential. Shown only in this response; share it now."
    )
    period: ReportLinkPeriod
    expires_at: datetime
    created_at: datetime


class ReportLinkList(ResponseModel):
    items: list[ReportLinkPublic]
    next_cursor: str | None
