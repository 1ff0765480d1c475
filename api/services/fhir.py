"""FHIR R4 export: a person's ratings as a Bundle (type collection) of Observations.

One Observation per rating value: a rating with `before` and `after` gives two.

- `code`: pain is LOINC 72514-3 (Pain severity - 0-10 verbal numeric rating [Score] -
  Reported). The other metrics have no LOINC code that means exactly them, so they carry
  text only (no invented codes).
- `bodySite`: SNOMED CT where we are sure of the concept, text always; laterality (left or
  right; `both` means unsided and gets none) in the HL7 extension
  `observation-structureLaterality` on `bodySite` (FHIR Extensions Pack, for R4 and R5),
  valued with SNOMED CT 7771000 |Left| or 24028007 |Right|.
- the phase: Observation has no element for "before/after an intervention", so it is a
  `component` with code text "Phase relative to the self-myofascial release session" and
  value text `before` or `after`.
- `effectiveDateTime` is the session's `started_at` for both phases; `issued` its
  `updated_at`; `identifier` the session id (`urn:uuid:<id>`, shared by the session's
  Observations); `subject` the person's display name (and id as an identifier).
- `valueQuantity`: the number with the catalog's unit as `unit`, and UCUM `{score}` (0-10
  scales) or `deg` (range of motion).
"""

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson

from api.services.downloads import Batch
from models.base import utc_now
from models.catalog import METRICS_BY_SLUG, REGIONS
from models.release_session import Rating, ReleaseSession

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
URI = "urn:ietf:rfc:3986"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LATERALITY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/observation-structureLaterality"

# Deterministic Observation ids: the same rating exports under the same id every time.
_OBSERVATION_NAMESPACE = uuid.UUID("5b0f3f3e-8d0c-4c33-9a57-2f0c6bb0d1a7")

METRIC_CODINGS: dict[str, list[dict[str, str]]] = {
    "pain": [
        {
            "system": LOINC,
            "code": "72514-3",
            "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
        }
    ],
}
# Only concepts we are sure of; every other region is text only.
REGION_SNOMED: dict[str, tuple[str, str]] = {
    "lower_back": ("37822005", "Lower back structure"),
    "neck": ("45048000", "Neck structure"),
    "thoracic_spine": ("122495006", "Thoracic spine structure"),
    "glutes": ("46862004", "Buttock structure"),
    "calves": ("53840002", "Calf of leg"),
}
LATERALITY_SNOMED: dict[str, tuple[str, str]] = {
    "left": ("7771000", "Left"),
    "right": ("24028007", "Right"),
}
UCUM_UNITS: dict[str, str] = {
    "pain": "{score}",
    "stiffness": "{score}",
    "mobility": "{score}",
    "rom": "deg",
}
PHASE_TEXT = "Phase relative to the self-myofascial release session"
REGION_NAMES = {region.slug: region.name for region in REGIONS}


def _instant(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _body_site(region: str, side: str) -> dict[str, Any]:
    name = REGION_NAMES.get(region, region)
    site: dict[str, Any] = {"text": f"{name}, {side}" if side in LATERALITY_SNOMED else name}
    if region in REGION_SNOMED:
        code, display = REGION_SNOMED[region]
        site["coding"] = [{"system": SNOMED, "code": code, "display": display}]
    if side in LATERALITY_SNOMED:
        code, display = LATERALITY_SNOMED[side]
        site["extension"] = [
            {
                "url": LATERALITY_EXTENSION,
                "valueCodeableConcept": {
                    "coding": [{"system": SNOMED, "code": code, "display": display}],
                    "text": display,
                },
            }
        ]
    return site


def _observation(
    session: ReleaseSession,
    subject: dict[str, Any],
    region: str,
    side: str,
    metric_slug: str,
    phase: str,
    value: float,
) -> tuple[str, dict[str, Any]]:
    metric = METRICS_BY_SLUG[metric_slug]
    observation_id = str(
        uuid.uuid5(_OBSERVATION_NAMESPACE, f"{session.id}/{region}/{side}/{metric_slug}/{phase}")
    )
    code: dict[str, Any] = {"text": f"{metric.name} ({metric.unit})"}
    if metric_slug in METRIC_CODINGS:
        code["coding"] = METRIC_CODINGS[metric_slug]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id,
        "identifier": [
            {
                "type": {"text": "releaselog session id"},
                "system": URI,
                "value": f"urn:uuid:{session.id}",
            }
        ],
        "status": "final",
        "code": code,
        "subject": subject,
        "effectiveDateTime": _instant(session.started_at),
        "issued": _instant(session.updated_at),
        "valueQuantity": {
            "value": _number(value),
            "unit": metric.unit,
            "system": UCUM,
            "code": UCUM_UNITS[metric_slug],
        },
        "bodySite": _body_site(region, side),
        "component": [{"code": {"text": PHASE_TEXT}, "valueCodeableConcept": {"text": phase}}],
    }
    if metric.unit != "degrees":
        resource["category"] = [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
        ]
    return observation_id, resource


async def bundle_chunks(
    person_id: uuid.UUID, batches: AsyncIterator[Batch]
) -> AsyncIterator[bytes]:
    """The person's ratings as a FHIR R4 Bundle, written as api/services/downloads.py reads
    them: the Bundle's opening, then each session's entries, then its closing. Memory is
    bounded by a batch, whatever the history."""
    head = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": _instant(utc_now()),
    }
    yield orjson.dumps(head)[:-1] + b',"entry":['
    separator = b""
    async for batch in batches:
        subject = {
            "identifier": {"system": URI, "value": f"urn:uuid:{person_id}"},
            "display": batch.display_name,
        }
        for session in batch.sessions:  # a chunk per session: a stalled client holds one
            entries = [
                orjson.dumps({"fullUrl": f"urn:uuid:{observation_id}", "resource": resource})
                for observation_id, resource in _observations(
                    session, batch.ratings[session.id], subject
                )
            ]
            if entries:
                yield separator + b",".join(entries)
                separator = b","
    yield b"]}"


def _observations(
    session: ReleaseSession, ratings: list[Rating], subject: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any]]]:
    for rating in ratings:
        for phase, value in (("before", rating.before), ("after", rating.after)):
            if value is not None:
                yield _observation(
                    session, subject, rating.region, rating.side, rating.metric, phase, value
                )
