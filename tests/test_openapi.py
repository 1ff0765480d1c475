"""The OpenAPI document is exact: what a response always has is required, what it may leave out
is optional (and never null), enums are enums, and no response body is free-form."""

from typing import Any

from fastapi.testclient import TestClient

from models.catalog import Catalog, catalog_document
from models.fhir import FhirBundle
from tests.conftest import Person
from tests.factories import session_body

# Response fields that a body may leave out: each one is a decision, listed here on purpose.
OMITTED_WHEN_EMPTY = {
    ("BatchItemResult", "id"),  # an invalid item without a usable id
    ("BatchItemResult", "errors"),  # only for an invalid item
    ("Problem", "errors"),  # only on a 422
    ("FhirCode", "coding"),  # LOINC for pain only
    ("FhirBodySite", "coding"),  # SNOMED CT only where certain
    ("FhirBodySite", "extension"),  # laterality only for left and right
    ("FhirObservation", "category"),  # `survey` only for the 0-10 scales
}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set()
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"].rsplit("/", 1)[-1])
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*map(_refs, node)) if node else set()
    return set()


def _reachable(schemas: dict[str, Any], roots: set[str]) -> set[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_refs(schemas[name]) - seen)
    return seen


def _content_schemas(document: dict[str, Any], *, requests: bool) -> list[Any]:
    found = []
    for item in document["paths"].values():
        for operation in item.values():
            if requests:
                bodies = [operation.get("requestBody", {})]
            else:
                bodies = list(operation["responses"].values())
            for body in bodies:
                found += [media["schema"] for media in body.get("content", {}).values()]
    return found


def test_every_field_a_response_always_has_is_required(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    names = _reachable(schemas, _refs(_content_schemas(document, requests=False)))
    assert {"Token", "Catalog", "Readiness", "FhirBundle", "SessionPublic", "Problem"} <= names
    optional = set()
    for name in names:
        schema = schemas[name]
        for field in set(schema.get("properties", {})) - set(schema.get("required", [])):
            optional.add((name, field))
    assert optional == OMITTED_WHEN_EMPTY
    for name, field in OMITTED_WHEN_EMPTY:
        field_schema = schemas[name]["properties"][field]
        assert "anyOf" not in field_schema, (name, field)  # left out, never null
        assert "default" not in field_schema, (name, field)


def test_request_bodies_keep_their_optional_fields(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert not _reachable(schemas, _refs(_content_schemas(document, requests=True))) & {
        "Token",
        "SessionPublic",
    }
    assert set(schemas["SessionCreate"]["required"]) == {"started_at", "ratings"}
    assert set(schemas["RatingIn"]["required"]) == {"region", "metric", "before"}
    assert set(schemas["UserCreate"]["required"]) == {"email", "password", "display_name"}
    assert "required" not in schemas["UserUpdate"]
    assert "required" not in schemas["SessionUpdate"]
    assert schemas["WebhookCreate"]["required"] == ["url"]


def test_no_response_body_is_free_form(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for media_type, media in response.get("content", {}).items():
                    where = (method, path, status, media_type)
                    schema = media.get("schema")
                    assert schema, where
                    if "json" in media_type:
                        assert "$ref" in schema, where
                    elif media_type == "application/pdf":
                        assert schema == {"type": "string", "format": "binary"}, where
                    else:
                        assert schema == {"type": "string"}, where


def test_enums_are_enums(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    status = schemas["BatchItemResult"]["properties"]["status"]
    assert set(status["enum"]) == {"created", "unchanged", "conflict", "invalid"}
    assert schemas["Token"]["properties"]["token_type"]["const"] == "bearer"
    assert schemas["Readiness"]["properties"]["status"]["const"] == "ready"
    for name in ("RatingPublic", "MetricSummary"):
        for field in ("region", "side", "metric"):
            assert "enum" in schemas[name]["properties"][field], (name, field)
    assert schemas["CatalogMetric"]["properties"]["better"]["enum"] == ["lower", "higher"]
    entry = schemas["FhirBundle"]["properties"]["entry"]["items"]["$ref"]
    assert entry.endswith("/FhirBundleEntry")


def test_the_catalog_is_its_model_with_numbers_written_plainly(client: TestClient) -> None:
    response = client.get("/v1/catalog")
    assert response.status_code == 200
    assert Catalog.model_validate(response.json()) == catalog_document()
    assert '"min":0,"max":10,"better":"lower","mcid_abs":2,"mcid_pct":30' in response.text
    assert '"max":180,"better":"higher","mcid_abs":5,"mcid_pct":null' in response.text


def test_the_fhir_export_is_exactly_its_schema(client: TestClient, alice: Person) -> None:
    ratings = [
        {"region": "adductors", "side": "left", "metric": "pain", "before": 6, "after": 3},
        {"region": "lower_back", "side": "right", "metric": "rom", "before": 35, "after": 42.5},
        {"region": "neck", "metric": "stiffness", "before": 5},
        {"region": "calves", "side": "left", "metric": "mobility", "before": 4, "after": 7},
    ]
    body = session_body(ratings=ratings)
    assert client.post("/v1/sessions", json=body, headers=alice.headers).status_code == 201
    bundle = client.get("/v1/export.fhir.json", headers=alice.headers).json()
    assert len(bundle["entry"]) == 7
    # Validation ignores unknown fields, so a field the model lacks would be missing here.
    published = FhirBundle.model_validate(bundle).model_dump(mode="json", exclude_unset=True)
    assert published == bundle
    resources = [entry["resource"] for entry in bundle["entry"]]
    # Every optional element occurs both ways, so each is really optional.
    for present in (
        lambda r: "coding" in r["code"],
        lambda r: "coding" in r["bodySite"],
        lambda r: "extension" in r["bodySite"],
        lambda r: "category" in r,
    ):
        assert {present(resource) for resource in resources} == {True, False}
