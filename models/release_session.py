"""Release sessions and their before/after ratings."""

import math
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictFloat,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.base import ResponseModel, UTCDateTime, omitted_when_none, utc_now
from models.catalog import METRICS_BY_SLUG, MetricSlug, RegionSlug, SideSlug, ToolSlug
from models.timestamps import Timestamp

MAX_FUTURE = timedelta(minutes=5)
MAX_DURATION = timedelta(hours=6)
MAX_RATINGS = 30


def _one_decimal(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    tenths = value * 10
    # A finite float near the maximum overflows to infinity when multiplied.
    if not math.isfinite(tenths) or abs(tenths - round(tenths)) > 1e-6:
        raise ValueError("must have at most one decimal")
    return round(value, 1)


def _plain_number(value: float | None) -> float | int | None:
    """Publish 6.0 as 6: the number the client sent, without a spurious decimal."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


# JSON true/false is not a number: strict floats refuse booleans (and numeric strings)
# while still accepting integers such as 5.
Decimal1 = Annotated[
    StrictFloat,
    AfterValidator(_one_decimal),
    PlainSerializer(_plain_number, return_type=int | float),
]
WaterMl = Annotated[Decimal1, Field(ge=0, le=3000)]
# The widest range of any metric; each metric's own range is checked in RatingIn.
RatingValue = Annotated[
    Decimal1,
    Field(
        ge=min(metric.min for metric in METRICS_BY_SLUG.values()),
        le=max(metric.max for metric in METRICS_BY_SLUG.values()),
        description="Within the metric's range (see the catalog); at most one decimal.",
    ),
]


class ReleaseSession(SQLModel, table=True):
    __tablename__ = "release_session"
    __table_args__ = (
        Index("ix_release_session_user_started", "user_id", "started_at", "id"),
        Index("ix_release_session_user_feed", "user_id", "change_seq", unique=True),
    )

    id: uuid.UUID = SQLField(primary_key=True)
    user_id: uuid.UUID = SQLField(foreign_key="user_account.id", ondelete="CASCADE")
    started_at: datetime = SQLField(sa_type=UTCDateTime)
    ended_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    tool: str | None = SQLField(default=None, max_length=32)
    water_before_ml: float | None = None
    water_after_ml: float | None = None
    felt_unwell_after: bool | None = None
    notes: str | None = SQLField(default=None, max_length=2000)
    complete: bool = False
    version: int = 1
    created_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    # A deleted session stays as a tombstone (no ratings) so the sync feed can report it.
    deleted_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    # Position in the owner's sync feed of this session's latest change.
    change_seq: int = SQLField(sa_column=Column(Integer, nullable=False))
    # Fingerprint of the normalised create body, for idempotent replays.
    create_hash: str = SQLField(max_length=64)
    # Set by the write that leaves the session with a worse rating when it had none (that
    # write queues session.flagged), kept while it stays worse, cleared by a write that leaves
    # it with none. Not public.
    flagged_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)


class Rating(SQLModel, table=True):
    """One (region, side, metric) rated before and after a session.

    `user_id` and `started_at` are copied from the session so that summaries aggregate
    one indexed range of this table without a join.
    """

    __tablename__ = "rating"
    __table_args__ = (Index("ix_rating_user_started", "user_id", "started_at", "metric", "region"),)

    session_id: uuid.UUID = SQLField(
        sa_column=Column(ForeignKey("release_session.id", ondelete="CASCADE"), primary_key=True)
    )
    position: int = SQLField(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    user_id: uuid.UUID = SQLField(foreign_key="user_account.id", ondelete="CASCADE")
    started_at: datetime = SQLField(sa_type=UTCDateTime)
    region: str = SQLField(sa_column=Column(String(32), nullable=False))
    side: str = SQLField(sa_column=Column(String(8), nullable=False))
    metric: str = SQLField(sa_column=Column(String(16), nullable=False))
    before: float = SQLField(sa_column=Column(Float, nullable=False))
    after: float | None = SQLField(default=None, sa_column=Column(Float, nullable=True))


# The Core tables, for statements that need no ORM objects (every session write and page read).
SESSION_TABLE = ReleaseSession.__table__  # type: ignore[attr-defined]
RATING_TABLE = Rating.__table__  # type: ignore[attr-defined]

# --- API schemas -------------------------------------------------------------------------


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: RegionSlug
    side: SideSlug = "both"
    metric: MetricSlug
    before: RatingValue
    after: RatingValue | None = None

    @field_validator("before", "after")
    @classmethod
    def _within_metric_range(cls, value: float | None, info: ValidationInfo) -> float | None:
        metric = METRICS_BY_SLUG.get(info.data.get("metric", ""))
        if value is not None and metric is not None and not metric.min <= value <= metric.max:
            raise ValueError(
                f"must be between {_plain_number(metric.min)} and {_plain_number(metric.max)} "
                f"for {metric.slug}"
            )
        return value


class RatingPublic(ResponseModel):
    region: RegionSlug
    side: SideSlug
    metric: MetricSlug
    before: Annotated[float, PlainSerializer(_plain_number, return_type=int | float)]
    after: Annotated[float | None, PlainSerializer(_plain_number, return_type=int | float | None)]


def _check_started_at(value: datetime) -> datetime:
    if value > utc_now() + MAX_FUTURE:
        raise ValueError("must not be more than 5 minutes in the future")
    return value


def _check_ended_at(value: datetime | None, started_at: datetime | None) -> datetime | None:
    if value is None or started_at is None:
        return value
    if value < started_at:
        raise ValueError("must not be before started_at")
    if value - started_at > MAX_DURATION:
        raise ValueError("must be at most 6 hours after started_at")
    return value


def _check_unique_ratings(ratings: list[RatingIn]) -> list[RatingIn]:
    seen: set[tuple[str, str, str]] = set()
    for rating in ratings:
        key = (rating.region, rating.side, rating.metric)
        if key in seen:
            raise ValueError(
                f"({rating.region}, {rating.side}, {rating.metric}) is rated more than once"
            )
        seen.add(key)
    return ratings


class SessionFields(BaseModel):
    """The client-owned fields of a session, with every rule of the contract."""

    model_config = ConfigDict(extra="forbid")

    started_at: Timestamp
    ended_at: Timestamp | None = None
    tool: ToolSlug | None = None
    water_before_ml: WaterMl | None = None
    water_after_ml: WaterMl | None = None
    felt_unwell_after: StrictBool | None = None
    notes: str | None = Field(default=None, max_length=2000)
    ratings: list[RatingIn] = Field(min_length=1, max_length=MAX_RATINGS)

    @field_validator("started_at")
    @classmethod
    def _started_at_not_future(cls, value: datetime) -> datetime:
        return _check_started_at(value)

    @field_validator("ended_at")
    @classmethod
    def _ended_at_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        return _check_ended_at(value, info.data.get("started_at"))

    @field_validator("ratings")
    @classmethod
    def _ratings_unique(cls, value: list[RatingIn]) -> list[RatingIn]:
        return _check_unique_ratings(value)


class SessionCreate(SessionFields):
    id: uuid.UUID | None = Field(
        default=None,
        description="Client-chosen id. With it, the create is idempotent: the same body again "
        "answers 200 with the stored session; a different body answers 409.",
    )


class SessionUpdate(BaseModel):
    """JSON merge of top-level fields; `ratings`, when given, replaces the whole list."""

    model_config = ConfigDict(extra="forbid")

    # May be left out but not null: the types say so, and so does the OpenAPI schema.
    started_at: Timestamp = None  # type: ignore[assignment]
    ended_at: Timestamp | None = None
    tool: ToolSlug | None = None
    water_before_ml: WaterMl | None = None
    water_after_ml: WaterMl | None = None
    felt_unwell_after: StrictBool | None = None
    notes: str | None = Field(default=None, max_length=2000)
    ratings: list[RatingIn] = Field(default=None, min_length=1, max_length=MAX_RATINGS)  # type: ignore[arg-type]

    @field_validator("ratings")
    @classmethod
    def _ratings_unique(cls, value: list[RatingIn]) -> list[RatingIn]:
        return _check_unique_ratings(value)


class SessionPublic(ResponseModel):
    id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None
    tool: ToolSlug | None
    water_before_ml: Annotated[
        float | None, PlainSerializer(_plain_number, return_type=int | float | None)
    ]
    water_after_ml: Annotated[
        float | None, PlainSerializer(_plain_number, return_type=int | float | None)
    ]
    felt_unwell_after: bool | None
    notes: str | None
    ratings: list[RatingPublic]
    complete: bool
    version: int
    created_at: datetime
    updated_at: datetime


class SessionList(ResponseModel):
    items: list[SessionPublic]
    next_cursor: str | None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sessions: list[dict[str, Any]] = Field(min_length=1, max_length=500)


class FieldError(ResponseModel):
    loc: list[str | int]
    msg: str


BatchStatus = Literal["created", "unchanged", "conflict", "invalid"]


class BatchItemResult(ResponseModel):
    id: uuid.UUID | SkipJsonSchema[None] = omitted_when_none(
        description="Left out for an invalid item without a usable id."
    )
    status: BatchStatus
    errors: list[FieldError] | SkipJsonSchema[None] = omitted_when_none(
        description="Why the item is invalid; only with `invalid`."
    )


class BatchResponse(ResponseModel):
    results: list[BatchItemResult]


class ChangeItem(ResponseModel):
    id: uuid.UUID
    deleted: bool
    session: SessionPublic | None


class ChangeFeed(ResponseModel):
    items: list[ChangeItem]
    next_since: str
    has_more: bool
