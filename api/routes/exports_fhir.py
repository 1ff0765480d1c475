"""FHIR R4 exports: the caller's own ratings, and a coach's client's."""

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import CallerDep, SessionDep, SessionsReader
from api.errors import problem_responses
from api.services import fhir as service
from models.fhir import FhirBundle

router = APIRouter(tags=["exports"])

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
    response_class=FhirResponse,
    responses={**BUNDLE_RESPONSE, **problem_responses(401, 403)},
    summary="Export the caller's ratings as a FHIR R4 Bundle",
)
def export_own(caller: SessionsReader, db: SessionDep) -> FhirResponse:
    bundle = service.export_bundle(db, caller, caller.user_id)
    return _bundle_response(bundle, "releaselog.fhir.json")


@router.get(
    "/v1/clients/{client_id}/export.fhir.json",
    response_class=FhirResponse,
    responses={**BUNDLE_RESPONSE, **problem_responses(401, 403, 404, 422)},
    summary="Export a client's ratings as a FHIR R4 Bundle (coach, live grant)",
)
def export_client(client_id: uuid.UUID, caller: CallerDep, db: SessionDep) -> FhirResponse:
    bundle = service.export_bundle(db, caller, client_id)
    return _bundle_response(bundle, f"releaselog-{client_id}.fhir.json")
