"""Opaque keyset cursors: a (timestamp, id) position in a list ordered by both."""

import base64
import binascii
import uuid
from datetime import datetime

from api.errors import BadRequest


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position in a cursor; a malformed cursor is a 400, never a 500."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, row_id = raw.split("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, uuid.UUID(row_id)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("Malformed cursor.") from None
