"""Pure ASGI middleware: request body limit, security headers, request id and access log."""

import logging
import random
import re
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import UNEXPECTED_ERROR, log_unhandled_error, problem_response
from api.logs import request_id_var


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes.")


class BodySizeLimitMiddleware:
    """Refuse bodies over the limit with 413, before they are read into memory.

    A declared Content-Length over the limit is refused without reading anything; a body
    without one (chunked) is counted as it streams in and refused as soon as it passes the
    limit. The error is an HTTPException, which FastAPI lets through its body parsing.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    response = problem_response(413, f"The request body exceeds {limit} bytes.")
                    await response(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                headers.append((b"cache-control", b"no-store"))
                # Nothing an API answers (reports and share links included) is for a search
                # engine's index.
                headers.append((b"x-robots-tag", b"noindex"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
access_logger = logging.getLogger("releaselog.access")


def _new_request_id() -> str:
    """32 random hex digits, like a uuid4's. From the process's seeded generator rather than
    os.urandom: an id must be unique, not secret, and this saves a system call per request."""
    return f"{random.getrandbits(128):032x}"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.fullmatch(text) else None
    return None


class RequestContextMiddleware:
    """A request id for every request, returned as X-Request-ID, and one access log line.

    A sane incoming X-Request-ID (letters, digits, `._:-`, at most 128) is kept, so a caller
    can correlate; anything else is replaced by a fresh one rather than echoed into logs.

    An error that no handler answered is answered here (500, problem+json) and logged without
    its message (errors.log_unhandled_error). Starlette's outermost layer would answer it too,
    but then re-raise it for the server to log, message and all (uvicorn's and gunicorn's
    handlers, not api/logs.py's): the server never sees it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or _new_request_id()
        # The same dict reaches the error handlers as `request.state`.
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        status = 500
        answered = False
        started = time.perf_counter()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception as error:
            log_unhandled_error(scope["method"], scope.get("route"), request_id, error)
            if not answered:  # else the server cuts the answer short
                response = problem_response(500, UNEXPECTED_ERROR)
                await response(scope, receive, send_with_request_id)
        finally:
            route = scope.get("route")
            access_logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": getattr(route, "path_format", None) or getattr(route, "path", None),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "request_id": request_id,
                },
            )
            request_id_var.reset(token)
