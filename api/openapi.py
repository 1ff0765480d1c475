"""An honest OpenAPI schema: every error is problem+json, with the Problem schema; and the
`responses=` helper that routes declare their errors with."""

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import SkipJsonSchema

from api.errors import PROBLEM_MEDIA_TYPE, title_for
from models.base import omitted_when_none

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details, as api.errors.problem_response writes every error: `type`
    always, `errors` only on a 422 and never null."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | SkipJsonSchema[None] = omitted_when_none()


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring problem+json for the given statuses."""
    return {
        status: {"model": Problem, "description": title_for(status), "content": _problem_content()}
        for status in statuses
    }


def _implied_statuses(operation: dict[str, Any]) -> list[str]:
    """Errors any operation of its kind can answer, so a new route cannot forget them.

    Credentials: 401 when missing or invalid. A body: 400 when it is not valid JSON, 413 when
    it is over the size limit, 422 when it breaks the schema. Parameters: 422.
    """
    codes: list[str] = []
    if operation.get("security"):
        codes.append("401")
    if "requestBody" in operation:
        codes += ["400", "413", "422"]
    if operation.get("parameters"):
        codes.append("422")
    return codes


def _declared_security(dependant: Dependant) -> list[dict[str, list[str]]]:
    """The security requirement a dependency carries as `openapi_security` (one that reads
    its credentials itself rather than through FastAPI's security dependencies), if any."""
    for dependency in dependant.dependencies:
        declared = getattr(dependency.call, "openapi_security", None) or _declared_security(
            dependency
        )
        if declared:
            return list(declared)
    return []


# A page's own error answers are pages too: a 4xx documented as HTML keeps its content.
HTML = "text/html"


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        if security := _declared_security(route.dependant):
            for method in route.methods:
                operation = schema["paths"][route.path_format][method.lower()]
                operation.setdefault("security", security)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    components["ProblemError"] = problem.pop("$defs")["ProblemError"]
    components["Problem"] = problem
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for code in _implied_statuses(operation):
                responses.setdefault(code, {"description": title_for(int(code))})
            for code, response in responses.items():
                if code[0] in "45" and HTML not in response.get("content", {}):
                    response["content"] = _problem_content()
                    if code == "422":
                        response["description"] = "Validation failed"
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
