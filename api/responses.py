"""Responses the routes build themselves."""

from fastapi import Response, status
from pydantic import BaseModel


def model_json(
    body: BaseModel,
    status_code: int = status.HTTP_200_OK,
    headers: dict[str, str] | None = None,
    *,
    exclude_none: bool = False,
) -> Response:
    """The model as JSON, serialised once. Returned as a model, FastAPI would validate it again
    before writing the same bytes (for a sync route, in a thread-pool hop of its own); the
    route's `response_model` still documents the body."""
    content = body.model_dump_json(by_alias=True, exclude_none=exclude_none)
    return Response(content, status_code, headers, media_type="application/json")
