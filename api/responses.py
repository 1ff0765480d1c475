"""Responses the routes build themselves."""

import logging

from fastapi import Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from api.services.downloads import DownloadStopped

logger = logging.getLogger("releaselog.downloads")


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


class DownloadResponse(StreamingResponse):
    """A streamed export (api/services/downloads.py). When it cannot go on (access ended while
    it streamed, or the database stayed busy), the body stops where it is and the response is
    left incomplete: the server closes the connection without the final chunk, so the client
    sees a broken download, never a complete-looking one that lacks data."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except DownloadStopped as stopped:
            logger.warning("A download stopped before its end: %s.", stopped)
