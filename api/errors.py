"""Domain errors and their one mapping to RFC 9457 problem details."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.logs import redacted_traceback

logger = logging.getLogger("releaselog.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class DomainError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class BadRequest(DomainError):
    status = 400
    title = "Bad request"


# Also the answer to the token of an account deleted since it was issued.
INVALID_TOKEN = "Invalid or expired access token."


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str = "Missing or invalid credentials.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Gone(DomainError):
    status = 410
    title = "Gone"


class PreconditionFailed(DomainError):
    status = 412
    title = "Precondition failed"


class Unprocessable(DomainError):
    status = 422
    title = "Validation failed"

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.errors = errors


class TooManyRequests(DomainError):
    status = 429
    title = "Too many requests"


class ServiceUnavailable(DomainError):
    status = 503
    title = "Service unavailable"


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    410: "Gone",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def title_for(status: int) -> str:
    return _TITLES.get(status, "Error")


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def field_errors(raw_errors: Any) -> list[dict[str, Any]]:
    """Pydantic errors as the contract's `[{loc, msg}]`, without echoing the input back."""
    return [
        {
            "loc": [part if isinstance(part, int) else str(part) for part in error["loc"]],
            "msg": error["msg"],
        }
        for error in raw_errors
    ]


def _describe(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"] if part != "body") or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    errors = getattr(exc, "errors", None)
    return problem_response(
        exc.status, exc.detail, title=exc.title, errors=errors, headers=exc.headers
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in raw):
        return problem_response(400, "The request body is not valid JSON.")
    errors = field_errors(raw)
    return problem_response(422, _describe(errors), errors=errors)


def _allowed_methods(request: Request) -> str:
    """The methods of every route whose path matches (Starlette names only one route's).
    Where a literal path and a template both match, the literal one wins: only the routes
    with the fewest path parameters count."""
    matches: list[tuple[int, set[str]]] = []
    for route in iter_route_contexts(request.app.router.routes):
        match, _scope = route.matches(request.scope)
        if match != Match.NONE and route.methods:
            matches.append((len(route.param_convertors), route.methods))
    if not matches:
        return ""
    fewest = min(parameters for parameters, _ in matches)
    allowed = {
        method for parameters, methods in matches if parameters == fewest for method in methods
    }
    return ", ".join(sorted(allowed))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource."
    elif exc.status_code == 405:
        detail = "This method is not allowed on this resource."
        headers["Allow"] = _allowed_methods(request)
    return problem_response(exc.status_code, detail, headers=headers or None)


UNEXPECTED_ERROR = "An unexpected error occurred. It has been logged."


def log_unhandled_error(
    method: str, route: object, request_id: str | None, exc: BaseException
) -> None:
    """One line for an error no handler answered: the route template (not the path) and the
    traceback without messages. Never exc_info: every handler, the test's and the server's
    included, would write the exception's message, which can quote a value (a database
    error quotes the row it refused)."""
    logger.error(
        "unhandled error on %s %s",
        method,
        getattr(route, "path_format", None) or getattr(route, "path", None),
        extra={"request_id": request_id, "exception": redacted_traceback(exc)},
    )


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    # Only for an error outside the request-id middleware, which answers every other one
    # itself (api/middleware.py): Starlette's outermost layer sends this 500, then hands the
    # exception on to the server, which logs it its own way.
    request_id = getattr(request.state, "request_id", None)
    log_unhandled_error(request.method, request.scope.get("route"), request_id, exc)
    headers = {"X-Request-ID": request_id} if request_id else None
    return problem_response(500, UNEXPECTED_ERROR, headers=headers)


async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
    """The database did not answer in time (a pool wait, SQLite's busy timeout, PostgreSQL's
    statement timeout) or not at all: the server's state, not the client's mistake, so a 503
    to retry rather than a 500. Logged like an unhandled error, without messages."""
    logger.warning(
        "database busy or unreachable on %s %s: %s",
        request.method,
        getattr(request.scope.get("route"), "path_format", None),
        type(exc).__name__,
        extra={"request_id": getattr(request.state, "request_id", None)},
    )
    return problem_response(
        503, "The database is busy or unreachable. Try again shortly.", headers={"Retry-After": "1"}
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    # OperationalError: "database is locked", a statement timeout, a lost connection;
    # TimeoutError: no pool connection came free in time.
    app.add_exception_handler(OperationalError, _database_busy)
    app.add_exception_handler(SQLAlchemyTimeoutError, _database_busy)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled_error)
