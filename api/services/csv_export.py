"""CSV export: one row per rating, written batch by batch as api/services/downloads.py reads
them."""

import csv
import io
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import UTC, datetime

from api.services.downloads import Batch
from models.release_session import Rating, ReleaseSession

CSV_HEADER = (
    "session_id",
    "started_at",
    "ended_at",
    "tool",
    "region",
    "side",
    "metric",
    "before",
    "after",
    "change",
    "water_before_ml",
    "water_after_ml",
    "felt_unwell_after",
    "notes",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str | None) -> str:
    """A text cell a spreadsheet shows as text: a would-be formula gets a leading quote."""
    if value is None:
        return ""
    return f"'{value}" if value.startswith(_FORMULA_TRIGGERS) else value


def number_cell(value: float | None) -> str:
    """A plain number: 6 not 6.0, 0 not empty, -3 stays -3; empty only when absent."""
    if value is None:
        return ""
    value = round(value, 1) + 0.0  # values carry one decimal; drop float noise and -0.0
    return str(int(value)) if value.is_integer() else repr(value)


def timestamp_cell(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bool_cell(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def _rows(session: ReleaseSession, ratings: list[Rating]) -> Iterator[list[str]]:
    for rating in ratings:
        change = None if rating.after is None else rating.after - rating.before
        yield [
            str(session.id),
            timestamp_cell(session.started_at),
            timestamp_cell(session.ended_at),
            text_cell(session.tool),
            text_cell(rating.region),
            text_cell(rating.side),
            text_cell(rating.metric),
            number_cell(rating.before),
            number_cell(rating.after),
            number_cell(change),
            number_cell(session.water_before_ml),
            number_cell(session.water_after_ml),
            bool_cell(session.felt_unwell_after),
            text_cell(session.notes),
        ]


def _encode(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


async def csv_chunks(batches: AsyncIterator[Batch]) -> AsyncIterator[str]:
    """The export, oldest session first: a header row, then one chunk per batch
    (api/services/downloads.py reads them, holding nothing while a chunk is sent)."""
    yield _encode([CSV_HEADER])
    async for batch in batches:
        rows = [
            row for session in batch.sessions for row in _rows(session, batch.ratings[session.id])
        ]
        if rows:
            yield _encode(rows)
