"""Summaries and CSV exports: the caller's own, and a coach's view of a client's."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from api.analytics import summaries
from api.analytics.periods import SummaryQuery
from api.deps import CallerDep, SessionDep, SessionsReader, SummariesReader
from api.errors import problem_responses
from api.responses import model_json
from api.services import exports
from api.services.access import readable_person
from models.catalog import MetricSlug, RegionSlug
from models.release_session import Timestamp
from models.summary import Bucket, Summary
from models.user import TimeZoneName

router = APIRouter(tags=["summaries"])

SUMMARY_ERRORS = problem_responses(401, 403, 404, 422)
EXPORT_ERRORS = problem_responses(401, 403, 404)
SUMMARY_DESCRIPTION = """
Trends of the sessions that started in the period (`from` and `to` inclusive), computed by the
database. Sessions count by their local date in `tz`. See the Summaries section of the API
for every definition. Notes where the contract leaves room:

- `region` / `metric` narrow the `metrics` list to that region or metric, and adherence and
  hydration to the sessions that rated it.
- Streaks are counted within the period.
- `tz` defaults to the time zone of the person summarised (the client, for a coach).
- A period is at most 10 years long, and at most 5 years with `bucket=day`.
"""
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One row per rating, oldest session first, header row first.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def summary_query(
    started_from: Annotated[
        Timestamp | None,
        Query(alias="from", description="RFC 3339 with an offset; default `to` - 90 days."),
    ] = None,
    started_to: Annotated[
        Timestamp | None, Query(alias="to", description="RFC 3339 with an offset; default now.")
    ] = None,
    tz: Annotated[
        TimeZoneName | None, Query(description="IANA time zone; default the account's.")
    ] = None,
    bucket: Annotated[Bucket, Query(description="Series buckets (ISO weeks).")] = "week",
    region: RegionSlug | None = None,
    metric: MetricSlug | None = None,
) -> SummaryQuery:
    return SummaryQuery(started_from, started_to, tz, bucket, region, metric)


SummaryQueryDep = Annotated[SummaryQuery, Depends(summary_query)]


def _csv_response(db: SessionDep, person_id: uuid.UUID) -> StreamingResponse:
    return StreamingResponse(
        exports.stream_csv(db, person_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="releaselog-export.csv"'},
    )


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
    person_id = readable_person(db, caller, client_id, "summaries:read")
    return model_json(summaries.summarize(db, person_id, query))


@router.get(
    "/v1/export.csv",
    response_class=StreamingResponse,
    responses={**CSV_RESPONSE, **EXPORT_ERRORS},
    summary="Export every rating as CSV (streamed)",
    description="Formula-like text cells (starting with `=`, `+`, `-`, `@`, tab, CR) get a "
    "leading `'`; numbers are written plainly.",
)
def own_export(caller: SessionsReader, db: SessionDep) -> StreamingResponse:
    return _csv_response(db, caller.user_id)


@router.get(
    "/v1/clients/{client_id}/export.csv",
    response_class=StreamingResponse,
    responses={**CSV_RESPONSE, **EXPORT_ERRORS},
    summary="Export a client's ratings as CSV (coach, read-only)",
    description="The same CSV as `/v1/export.csv`. Without a live grant from this client: 404.",
)
def client_export(client_id: uuid.UUID, caller: CallerDep, db: SessionDep) -> StreamingResponse:
    person_id = readable_person(db, caller, client_id, "sessions:read")
    return _csv_response(db, person_id)
