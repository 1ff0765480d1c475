"""Insights: the caller's own, and a coach's view of a client's."""

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from api.analytics import insights
from api.deps import CallerDep, PeriodQueryDep, SessionDep, SummariesReader
from api.openapi import problem_responses
from api.responses import model_json
from api.services.access import readable_person
from models.insights import Insights
from models.timestamps import RANGE

router = APIRouter(tags=["insights"])

INSIGHTS_ERRORS = problem_responses(401, 403, 404, 422)
INSIGHTS_DESCRIPTION = f"""
What no summary shows, over the sessions that started in the period (`from` and `to`
inclusive), computed by the database: how long the relief lasts (`carry_over`), whether one
side lags (`asymmetry`), what seems to help (`what_works`, each level of a factor against the
rest of that factor, with its Welch 95 % interval) and what went wrong (`safety`). See the
Insights section of the API for every definition. Notes where the contract leaves room:

- `region` / `metric` narrow every list (and the safety count) to ratings of that region or
  metric.
- Thresholds (worse ratings, 300 ml, 10 and 20 minutes) are compared exactly on the stored
  one-decimal values and microsecond timestamps.
- `what_works` verdicts are associations in one person's data, not proof: show the interval
  with the difference.
- Safety items are ordered by session (newest first, then session id), and within a session
  in the order of its ratings.
- A period is at most 10 years long; `from` and `to` are instants from {RANGE} (422 outside).
"""


# The summary's period, region and metric (its `bucket` means nothing here).
InsightsQueryDep = PeriodQueryDep


@router.get(
    "/v1/insights",
    response_model=Insights,
    responses=INSIGHTS_ERRORS,
    summary="Insights from the caller's sessions over a period",
    description=INSIGHTS_DESCRIPTION,
)
def own_insights(caller: SummariesReader, db: SessionDep, query: InsightsQueryDep) -> Response:
    return model_json(insights.insights(db, caller.user_id, query))


@router.get(
    "/v1/clients/{client_id}/insights",
    response_model=Insights,
    responses=INSIGHTS_ERRORS,
    summary="Insights from a client's sessions (coach, read-only)",
    description=INSIGHTS_DESCRIPTION
    + "\nNeeds `summaries:read` and `clients:read`. Without a live grant from this client "
    "(also for one's own id: nobody is their own client): 404.",
)
def client_insights(
    client_id: uuid.UUID, caller: CallerDep, db: SessionDep, query: InsightsQueryDep
) -> Response:
    person_id = readable_person(db, caller, client_id, "summaries:read", as_coach=True)
    return model_json(insights.insights(db, person_id, query))
