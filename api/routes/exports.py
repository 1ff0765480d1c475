"""Exports of every rating: CSV and FHIR R4, the caller's own and a coach's client's."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlmodel import Session

from api.deps import BriefSessionDep, StartedFrom, StartedTo, reader_with
from api.openapi import problem_responses
from api.responses import DownloadResponse
from api.services import csv_export, downloads, fhir
from api.services.access import Caller
from api.state import app_state
from models.fhir import FhirBundle

# No router-wide tag: the schema has always listed the CSV exports with the summaries.
router = APIRouter()

# --- CSV ---------------------------------------------------------------------------------

CSV_ERRORS = problem_responses(401, 403, 404, 422, 503)
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One row per rating, oldest session first, header row first.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@dataclass(frozen=True)
class ExportRange:
    started_from: datetime | None
    started_to: datetime | None


def _export_range(started_from: StartedFrom = None, started_to: StartedTo = None) -> ExportRange:
    return ExportRange(started_from, started_to)


ExportRangeQuery = Annotated[ExportRange, Depends(_export_range)]
# The caller's credential and the access check use the request's turn at the database, which
# ends when the route returns: the download reads its later batches in turns of their own.
DownloadReader = Annotated[Caller, Depends(reader_with("sessions:read", brief=True))]

DOWNLOAD_NOTE = (
    " Streamed in batches: the download holds the sessions that existed when it began "
    "(sessions created later are left out; a session deleted meanwhile is left out too). If "
    "access ends while it streams (the client revokes the coach's grant), it stops and the "
    "connection is closed before the end of the body."
)


def _batches(
    request: Request,
    db: Session,
    caller: Caller,
    person_id: uuid.UUID,
    export_range: ExportRange,
    *,
    as_coach: bool,
) -> AsyncIterator[downloads.Batch]:
    state = app_state(request.app)
    download, first = downloads.begin(
        db,
        caller,
        person_id,
        as_coach=as_coach,
        started_from=export_range.started_from,
        started_to=export_range.started_to,
        batch_size=state.settings.export_batch_sessions,
    )
    return downloads.batches(state.gate, state.engine, download, first)


def _csv_response(chunks: AsyncIterator[str]) -> DownloadResponse:
    return DownloadResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="releaselog-export.csv"'},
    )


@router.get(
    "/v1/export.csv",
    tags=["summaries"],
    response_class=StreamingResponse,
    responses={**CSV_RESPONSE, **CSV_ERRORS},
    summary="Export every rating as CSV (streamed)",
    description="Formula-like text cells (starting with `=`, `+`, `-`, `@`, tab, CR) get a "
    "leading `'`; numbers are written plainly." + DOWNLOAD_NOTE,
)
def own_export(
    request: Request, caller: DownloadReader, db: BriefSessionDep, export_range: ExportRangeQuery
) -> DownloadResponse:
    batches = _batches(request, db, caller, caller.user_id, export_range, as_coach=False)
    return _csv_response(csv_export.csv_chunks(batches))


@router.get(
    "/v1/clients/{client_id}/export.csv",
    tags=["summaries"],
    response_class=StreamingResponse,
    responses={**CSV_RESPONSE, **CSV_ERRORS},
    summary="Export a client's ratings as CSV (coach, read-only)",
    description="The same CSV as `/v1/export.csv`. Without a live grant from this client: 404 "
    "(also for one's own id: nobody is their own client)." + DOWNLOAD_NOTE,
)
def client_export(
    client_id: uuid.UUID,
    request: Request,
    caller: DownloadReader,
    db: BriefSessionDep,
    export_range: ExportRangeQuery,
) -> DownloadResponse:
    batches = _batches(request, db, caller, client_id, export_range, as_coach=True)
    return _csv_response(csv_export.csv_chunks(batches))


# --- FHIR R4 -----------------------------------------------------------------------------

FHIR_JSON = "application/fhir+json"
BUNDLE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A FHIR R4 Bundle (type `collection`) of Observations, one per rating "
        "value (before and after). Pain is LOINC 72514-3; `bodySite` is SNOMED CT where a code "
        "is certain, text otherwise, with laterality in the `observation-structureLaterality` "
        "extension; the phase is a component (`before` / `after`); `identifier` is the "
        "session id; `effectiveDateTime` the session's `started_at`.",
        "model": FhirBundle,
    }
}


class FhirJson(JSONResponse):
    """The routes' documented response class: JSON (the Bundle's schema) as FHIR's media
    type. What they return is a DownloadResponse of that media type, streamed."""

    media_type = FHIR_JSON


def _bundle_response(chunks: AsyncIterator[bytes], filename: str) -> DownloadResponse:
    return DownloadResponse(
        chunks,
        media_type=FHIR_JSON,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/v1/export.fhir.json",
    tags=["exports"],
    response_class=FhirJson,
    responses={**BUNDLE_RESPONSE, **problem_responses(401, 403, 422, 503)},
    summary="Export the caller's ratings as a FHIR R4 Bundle",
    description=DOWNLOAD_NOTE.strip(),
)
def export_own(
    request: Request, caller: DownloadReader, db: BriefSessionDep, export_range: ExportRangeQuery
) -> DownloadResponse:
    batches = _batches(request, db, caller, caller.user_id, export_range, as_coach=False)
    return _bundle_response(fhir.bundle_chunks(caller.user_id, batches), "releaselog.fhir.json")


@router.get(
    "/v1/clients/{client_id}/export.fhir.json",
    tags=["exports"],
    response_class=FhirJson,
    responses={**BUNDLE_RESPONSE, **problem_responses(401, 403, 404, 422, 503)},
    summary="Export a client's ratings as a FHIR R4 Bundle (coach, live grant)",
    description="Without a live grant from this client: 404 (also for one's own id)."
    + DOWNLOAD_NOTE,
)
def export_client(
    client_id: uuid.UUID,
    request: Request,
    caller: DownloadReader,
    db: BriefSessionDep,
    export_range: ExportRangeQuery,
) -> DownloadResponse:
    batches = _batches(request, db, caller, client_id, export_range, as_coach=True)
    chunks = fhir.bundle_chunks(client_id, batches)
    return _bundle_response(chunks, f"releaselog-{client_id}.fhir.json")
