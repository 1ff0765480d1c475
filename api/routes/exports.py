"""Exports of every rating: CSV and FHIR R4, the caller's own and a coach's client's."""

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import CallerDep, SessionDep, SessionsReader
from api.openapi import problem_responses
from api.services import csv_export, fhir
from api.services.access import readable_person
from models.fhir import FhirBundle

# No router-wide tag: the schema has always listed the CSV exports with the summaries.
router = APIRouter()

# --- CSV ---------------------------------------------------------------------------------

CSV_ERRORS = problem_responses(401, 403, 404)
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One row per rating, oldest session first, header row first.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def _csv_response(db: SessionDep, person_id: uuid.UUID) -> StreamingResponse:
    return StreamingResponse(
        csv_export.stream_csv(db, person_id),
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
    "leading `'`; numbers are written plainly.",
)
def own_export(caller: SessionsReader, db: SessionDep) -> StreamingResponse:
    return _csv_response(db, caller.user_id)


@router.get(
    "/v1/clients/{client_id}/export.csv",
    tags=["summaries"],
    response_class=StreamingResponse,
    responses={**CSV_RESPONSE, **CSV_ERRORS},
    summary="Export a client's ratings as CSV (coach, read-only)",
    description="The same CSV as `/v1/export.csv`. Without a live grant from this client: 404.",
)
def client_export(client_id: uuid.UUID, caller: CallerDep, db: SessionDep) -> StreamingResponse:
    person_id = readable_person(db, caller, client_id, "sessions:read")
    return _csv_response(db, person_id)


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


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def _bundle_response(bundle: dict[str, Any], filename: str) -> FhirResponse:
    return FhirResponse(
        bundle, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get(
    "/v1/export.fhir.json",
    tags=["exports"],
    response_class=FhirResponse,
    responses={**BUNDLE_RESPONSE, **problem_responses(401, 403)},
    summary="Export the caller's ratings as a FHIR R4 Bundle",
)
def export_own(caller: SessionsReader, db: SessionDep) -> FhirResponse:
    bundle = fhir.export_bundle(db, caller, caller.user_id)
    return _bundle_response(bundle, "releaselog.fhir.json")


@router.get(
    "/v1/clients/{client_id}/export.fhir.json",
    tags=["exports"],
    response_class=FhirResponse,
    responses={**BUNDLE_RESPONSE, **problem_responses(401, 403, 404, 422)},
    summary="Export a client's ratings as a FHIR R4 Bundle (coach, live grant)",
)
def export_client(client_id: uuid.UUID, caller: CallerDep, db: SessionDep) -> FhirResponse:
    bundle = fhir.export_bundle(db, caller, client_id)
    return _bundle_response(bundle, f"releaselog-{client_id}.fhir.json")
