"""Structured logs: one JSON object per line, with the request id of the request being served.

Only fields named here are written, so a credential or a note can reach a log line only if
someone passes it as the message itself. The access log (api/middleware.py) writes the method,
the route template (never the raw path or query), the status, the duration and the request id.
"""

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_EXTRA_FIELDS = ("method", "route", "status", "duration_ms")


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
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


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
