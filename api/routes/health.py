"""Liveness and readiness."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.errors import problem_response
from api.openapi import problem_responses
from api.state import app_state
from models.operations import Liveness, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Liveness, summary="The process is up")
async def healthz() -> Liveness:  # no I/O: no worker thread
    return Liveness()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The database is reachable",
    responses=problem_responses(503),
)
def readyz(request: Request) -> JSONResponse:
    try:
        with app_state(request.app).engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return problem_response(503, "The database is not reachable.")
    return JSONResponse(Readiness().model_dump())
