"""Opaque keyset cursors: a (timestamp, id) position in a list ordered by both."""

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_

from api.errors import BadRequest
from models.timestamps import utc_instant


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position in a cursor; a malformed cursor is a 400, never a 500. Its instant is held
    to the range of every timestamp a client sends (a forged one may say year 1 at +14:00)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, row_id = raw.split("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return utc_instant(parsed), uuid.UUID(row_id)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("Malformed cursor.") from None


def after(
    statement: Select[Any], at: Any, row_id: Any, cursor: str | None, *, descending: bool = False
) -> Select[Any]:
    """Rows after the cursor's position in an (at, id) order, ascending or descending."""
    if not cursor:
        return statement
    position_at, position_id = decode_cursor(cursor)
    if descending:
        return statement.where(or_(at < position_at, and_(at == position_at, row_id < position_id)))
    return statement.where(or_(at > position_at, and_(at == position_at, row_id > position_id)))


def next_cursor(positions: list[tuple[datetime, uuid.UUID]], limit: int) -> str | None:
    """The cursor after a page fetched with `limit + 1` rows, or None on the last page."""
    if len(positions) <= limit:
        return None
    return encode_cursor(*positions[limit - 1])
