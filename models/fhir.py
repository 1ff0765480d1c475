"""The FHIR R4 export's shape: the subset of Bundle and Observation that
api/services/fhir.py emits, for the OpenAPI schema (the export writes its dicts itself).

Only what the export writes, with what it always writes required; an element it writes only
sometimes (a coding, laterality, the category) is optional and never null.
"""

from typing import Annotated, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from models.base import ResponseModel, omitted_when_none

Instant = Annotated[
    str,
    Field(
        description="A FHIR instant: RFC 3339 in UTC (`Z`).",
        json_schema_extra={"format": "date-time"},
    ),
]
UriSystem = Literal["urn:ietf:rfc:3986"]


class FhirCoding(ResponseModel):
    system: Literal["http://loinc.org", "http://snomed.info/sct"]
    code: str
    display: str


class FhirCategoryCoding(ResponseModel):
    system: Literal["http://terminology.hl7.org/CodeSystem/observation-category"]
    code: Literal["survey"]
    display: str


class FhirCategory(ResponseModel):
    coding: list[FhirCategoryCoding]


class FhirText(ResponseModel):
    """A CodeableConcept with text only."""

    text: str


class FhirCode(ResponseModel):
    """What was measured: text always, LOINC for pain."""

    coding: list[FhirCoding] | SkipJsonSchema[None] = omitted_when_none()
    text: str


class FhirLateralityConcept(ResponseModel):
    coding: list[FhirCoding]
    text: Literal["Left", "Right"]


class FhirLateralityExtension(ResponseModel):
    url: Literal["http://hl7.org/fhir/StructureDefinition/observation-structureLaterality"]
    valueCodeableConcept: FhirLateralityConcept


class FhirBodySite(ResponseModel):
    """The region: text always, SNOMED CT where certain, laterality for left and right."""

    text: str
    coding: list[FhirCoding] | SkipJsonSchema[None] = omitted_when_none()
    extension: list[FhirLateralityExtension] | SkipJsonSchema[None] = omitted_when_none()


class FhirIdentifier(ResponseModel):
    type: FhirText
    system: UriSystem
    value: str = Field(description="`urn:uuid:` + the session id.")


class FhirSubjectIdentifier(ResponseModel):
    system: UriSystem
    value: str = Field(description="`urn:uuid:` + the person's id.")


class FhirSubject(ResponseModel):
    identifier: FhirSubjectIdentifier
    display: str


class FhirQuantity(ResponseModel):
    value: float
    unit: str = Field(description="The catalog's unit of the metric.")
    system: Literal["http://unitsofmeasure.org"]
    code: Literal["{score}", "deg"]


class FhirPhase(ResponseModel):
    text: Literal["before", "after"]


class FhirPhaseComponent(ResponseModel):
    code: FhirText
    valueCodeableConcept: FhirPhase


class FhirObservation(ResponseModel):
    resourceType: Literal["Observation"]
    id: str
    identifier: list[FhirIdentifier]
    status: Literal["final"]
    category: list[FhirCategory] | SkipJsonSchema[None] = omitted_when_none(
        description="`survey` for the 0-10 scales; left out for range of motion."
    )
    code: FhirCode
    subject: FhirSubject
    effectiveDateTime: Instant
    issued: Instant
    valueQuantity: FhirQuantity
    bodySite: FhirBodySite
    component: list[FhirPhaseComponent]


class FhirBundleEntry(ResponseModel):
    fullUrl: str = Field(description="`urn:uuid:` + the Observation's id.")
    resource: FhirObservation


class FhirBundle(ResponseModel):
    """A FHIR R4 Bundle of type `collection`: one Observation per rating value."""

    resourceType: Literal["Bundle"]
    id: str
    type: Literal["collection"]
    timestamp: Instant
    entry: list[FhirBundleEntry]
