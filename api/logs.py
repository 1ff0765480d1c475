"""Structured logs: one JSON object per line, with the request id of the request being served.

Only fields named here are written, so a credential or a note can reach a log line only if
someone passes it as the message itself. The access log (api/middleware.py) writes the method,
the route template (never the raw path or query), the status, the duration and the request id.
An exception is written as its traceback without the exceptions' messages (see
redacted_traceback): a message may quote any value the failing code held.
"""

import json
import logging
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_EXTRA_FIELDS = ("method", "route", "status", "duration_ms")


_STATEMENT_CHARS = 300
_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def _chain(error: BaseException) -> list[tuple[BaseException, str | None]]:
    """`error` and the exceptions it was raised from or while handling, oldest first, each
    with Python's words for how it led to the next (None for `error` itself)."""
    newest_first: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    link: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        newest_first.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    return newest_first[::-1]


def _headline(error: BaseException) -> str:
    """The type of `error`, and of a database error what identifies it without a value: its
    SQLSTATE or SQLite error name, the constraint it broke, and the SQL statement (its
    parameters are placeholders)."""
    kind = type(error)
    parts = [f"{kind.__module__}.{kind.__qualname__} (message withheld)"]
    code = getattr(error, "sqlstate", None) or getattr(error, "sqlite_errorname", None)
    if isinstance(code, str):
        parts.append(f"[code: {code}]")
    constraint = getattr(getattr(error, "diag", None), "constraint_name", None)
    if isinstance(constraint, str):
        parts.append(f"[constraint: {constraint}]")
    statement = getattr(error, "statement", None)
    if isinstance(statement, str):
        parts.append(f"[SQL: {' '.join(statement.split())[:_STATEMENT_CHARS]}]")
    return " ".join(parts)


def redacted_traceback(error: BaseException) -> str:
    """The traceback of `error`, with the exceptions it was raised from, but without their
    messages: the frames and types tell where it failed, and a message can quote anything the
    failing code held (a driver's "Key (email)=(...) already exists", a value in a
    ValueError). Database errors keep their code, constraint and SQL (see _headline)."""
    lines: list[str] = []
    for error_in_chain, link in _chain(error):
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(error_in_chain.__traceback__))
        lines.append(_headline(error_in_chain) + "\n")
        if link is not None:
            lines.append(f"\n{link}\n\n")
    return "".join(lines).rstrip("\n")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _EXTRA_FIELDS:
            if hasattr(record, name):
                document[name] = getattr(record, name)
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id is not None:
            document["request_id"] = request_id
        exception = getattr(record, "exception", None)
        if record.exc_info:
            exception = self.formatException(record.exc_info)
        if isinstance(exception, str):
            document["exception"] = exception
        return json.dumps(document, default=str)

    def formatException(self, ei: Any) -> str:
        error = ei[1]
        return redacted_traceback(error) if error is not None else ""


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so configuring twice adds nothing."""


def configure_logging(level: str) -> None:
    """JSON lines on stderr for every logger that propagates to the root."""
    root = logging.getLogger()
    if not any(isinstance(handler, _JsonHandler) for handler in root.handlers):
        handler = _JsonHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    # WeasyPrint (the report's PDF) narrates every step at INFO, and fontTools its subsetting.
    for chatty in ("weasyprint.progress", "fontTools"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
