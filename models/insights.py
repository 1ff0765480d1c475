"""Insights: the published figures of GET /v1/insights (see the Insights section of the API)."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from models.base import ResponseModel
from models.catalog import MetricSlug, RegionSlug, SideSlug

Better = Literal["lower", "higher"]
Factor = Literal["tool", "hydration", "duration"]
Verdict = Literal["better", "worse", "unclear"]
WorseSide = Literal["left", "right"]


class InsightsPeriod(ResponseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from", description="Start of the period (inclusive), UTC.")
    to: datetime = Field(description="End of the period (inclusive), UTC.")
    tz: str = Field(description="The IANA time zone of the period.")


class CarryOver(ResponseModel):
    region: RegionSlug
    side: SideSlug
    metric: MetricSlug
    better: Better
    intervals: int = Field(
        description="Consecutive ratings (prev, next) of this metric in the period whose "
        "prev has both before and after."
    )
    mean_relief: float = Field(description="Mean of prev's improvement (positive is better).")
    mean_rebound: float = Field(
        description="Mean of next.before - prev.after, signed so that positive is worse."
    )
    retention_pct: float | None = Field(
        description="100 x (mean_relief - mean_rebound) / mean_relief; null unless "
        "mean_relief > 0. May be below 0 or above 100."
    )
    median_gap_days: float = Field(description="Median time from prev to next, in days.")


class Asymmetry(ResponseModel):
    region: RegionSlug
    metric: MetricSlug
    better: Better
    sessions: int = Field(description="Sessions that rated this metric on both left and right.")
    mean_diff_before: float = Field(description="Mean of left.before - right.before.")
    mean_diff_after: float | None = Field(
        description="Mean of left.after - right.after over the sessions with both afters."
    )
    slope_per_week: float | None = Field(
        description="Least-squares slope of left.before - right.before against time in weeks; "
        "null with fewer than 3 sessions or no spread in time."
    )
    worse_side: WorseSide | None = Field(
        description="The side whose mean before is worse, when |mean_diff_before| reaches the "
        "metric's mcid_abs; else null."
    )


class WhatWorks(ResponseModel):
    region: RegionSlug
    side: SideSlug
    metric: MetricSlug
    better: Better
    factor: Factor
    level: str = Field(
        description="A tool slug; `hydrated` / `not_hydrated`; or `under_10_min`, "
        "`10_to_20_min`, `20_min_or_more`."
    )
    n: int = Field(description="Pairs at this level (at least 3).")
    mean_improvement: float
    rest_n: int = Field(description="Pairs at another level of the same factor (at least 3).")
    rest_mean_improvement: float
    difference: float = Field(description="mean_improvement - rest_mean_improvement.")
    ci95_low: float = Field(description="Welch 95 % interval of the difference, lower bound.")
    ci95_high: float = Field(description="Welch 95 % interval of the difference, upper bound.")
    verdict: Verdict = Field(
        description="`better` when ci95_low > 0, `worse` when ci95_high < 0, else `unclear`. "
        "An association in one person's data, not proof: show the interval with it."
    )


class SafetyItem(ResponseModel):
    session_id: uuid.UUID
    started_at: datetime
    region: RegionSlug
    side: SideSlug
    metric: MetricSlug
    before: float
    after: float
    worsening: float = Field(description="-improvement: at least the metric's mcid_abs.")


class Safety(ResponseModel):
    flagged_sessions: int = Field(
        description="Distinct sessions in the period with a worse rating (all of them)."
    )
    items: list[SafetyItem] = Field(
        description="The worse ratings, newest session first, at most 100."
    )


class Insights(ResponseModel):
    period: InsightsPeriod
    carry_over: list[CarryOver]
    asymmetry: list[Asymmetry]
    what_works: list[WhatWorks]
    safety: Safety
