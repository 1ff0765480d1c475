"""Summaries: the published figures of GET /v1/summary (see the Summaries section of the API)."""

from datetime import date, datetime
from typing import Literal

from pydantic import ConfigDict, Field

from models.base import ResponseModel
from models.catalog import MetricSlug, RegionSlug, SideSlug

Bucket = Literal["day", "week", "month"]
Trend = Literal["improving", "stable", "worsening"]


class SummaryPeriod(ResponseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from", description="Start of the period (inclusive), UTC.")
    to: datetime = Field(description="End of the period (inclusive), UTC.")
    tz: str = Field(description="The IANA time zone that decides local dates.")
    bucket: Bucket


class Adherence(ResponseModel):
    sessions: int
    complete_sessions: int
    active_days: int = Field(description="Local dates with at least one session.")
    sessions_per_week: float | None = Field(
        description="sessions / (period length in days / 7); null for an empty period length."
    )
    current_streak_days: int = Field(
        description="Consecutive local dates with a session, counting back from the local "
        "date of `to` (or from the day before when `to`'s date has none yet), within the period."
    )
    longest_streak_days: int = Field(description="Longest run of such dates within the period.")
    last_session_at: datetime | None


class Hydration(ResponseModel):
    sessions_with_water: int = Field(description="Sessions that logged both water amounts.")
    hydrated_sessions: int = Field(description="Both amounts at least 300 ml.")
    hydrated_rate: float | None
    unwell_rate_hydrated: float | None
    unwell_rate_not_hydrated: float | None


class Baseline(ResponseModel):
    slope_per_week: float | None = Field(
        description="Least-squares slope of `before` against time in weeks, sign as stored."
    )
    trend: Trend | None


class SeriesPoint(ResponseModel):
    start: date = Field(description="The bucket's first local date.")
    sessions: int
    mean_before: float | None
    mean_after: float | None
    mean_change: float | None


class MetricSummary(ResponseModel):
    region: RegionSlug
    side: SideSlug
    metric: MetricSlug
    better: Literal["lower", "higher"]
    pairs: int
    mean_before: float | None
    mean_after: float | None
    mean_change: float | None
    mean_improvement: float | None
    improvement_pct: float | None
    responder_rate: float | None
    baseline: Baseline
    series: list[SeriesPoint]


class Summary(ResponseModel):
    period: SummaryPeriod
    adherence: Adherence
    hydration: Hydration
    metrics: list[MetricSummary]
