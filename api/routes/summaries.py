"""Summaries: the caller's own, and a coach's view of a client's."""

import uuid
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.analytics import summaries
from api.analytics.periods import SummaryQuery
from api.deps import CallerDep, PeriodQueryDep, SessionDep, SummariesReader
from api.openapi import problem_responses
from api.responses import model_json
from api.services.access import readable_client
from models.summary import Bucket, Summary
from models.timestamps import RANGE

router = APIRouter(tags=["summaries"])

SUMMARY_ERRORS = problem_responses(401, 403, 404, 422)
SUMMARY_DESCRIPTION = f"""
Trends of the sessions that started in the period (`from` and `to` inclusive), computed by the
database. Sessions count by their local date in `tz`. See the Summaries section of the API
for every definition. Notes where the contract leaves room:

- `region` / `metric` narrow the `metrics` list to that region or metric, and adherence and
  hydration to the sessions that rated it.
- Streaks are counted within the period.
- `tz` defaults to the time zone of the person summarised (the client, for a coach).
- A period is at most 10 years long, and at most 5 years with `bucket=day`.
- `from` and `to` are instants from {RANGE} (422 outside); the default `from` is never
  before the first of them.
"""


def summary_query(
    period: PeriodQueryDep,
    bucket: Annotated[Bucket, Query(description="Series buckets (ISO weeks).")] = "week",
) -> SummaryQuery:
    return replace(period, bucket=bucket)


SummaryQueryDep = Annotated[SummaryQuery, Depends(summary_query)]


@router.get(
    "/v1/summary",
    response_model=Summary,
    responses=SUMMARY_ERRORS,
    summary="Summary of the caller's sessions over a period",
    description=SUMMARY_DESCRIPTION,
)
def own_summary(caller: SummariesReader, db: SessionDep, query: SummaryQueryDep) -> Response:
    return model_json(summaries.summarize(db, caller.user_id, query))


@router.get(
    "/v1/clients/{client_id}/summary",
    response_model=Summary,
    responses=SUMMARY_ERRORS,
    summary="Summary of a client's sessions (coach, read-only)",
    description=SUMMARY_DESCRIPTION + "\nWithout a live grant from this client: 404.",
)
def client_summary(
    client_id: uuid.UUID, caller: CallerDep, db: SessionDep, query: SummaryQueryDep
) -> Response:
    person_id = readable_client(db, caller, client_id, "summaries:read")
    return model_json(summaries.summarize(db, person_id, query))
