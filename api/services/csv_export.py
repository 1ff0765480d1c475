"""CSV export: one row per rating, streamed in keyset-paginated batches.

A person with ten years of data never sits in memory at once: each batch is read after the
previous batch's last (started_at, id), along the (user_id, started_at, id) index.
"""

import csv
import io
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select
from sqlmodel import Session, col

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
SESSIONS_PER_BATCH = 200
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


def _session_batch(
    db: Session, person_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None
) -> list[ReleaseSession]:
    statement = select(ReleaseSession).where(
        col(ReleaseSession.user_id) == person_id,
        col(ReleaseSession.deleted_at).is_(None),
    )
    if after is not None:
        started_at, session_id = after
        statement = statement.where(
            or_(
                col(ReleaseSession.started_at) > started_at,
                and_(
                    col(ReleaseSession.started_at) == started_at,
                    col(ReleaseSession.id) > session_id,
                ),
            )
        )
    statement = statement.order_by(col(ReleaseSession.started_at), col(ReleaseSession.id)).limit(
        SESSIONS_PER_BATCH
    )
    return list(db.execute(statement).scalars())


def _ratings(db: Session, session_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Rating]]:
    grouped: dict[uuid.UUID, list[Rating]] = {session_id: [] for session_id in session_ids}
    statement = (
        select(Rating)
        .where(col(Rating.session_id).in_(session_ids))
        .order_by(col(Rating.session_id), col(Rating.position))
    )
    for rating in db.execute(statement).scalars():
        grouped[rating.session_id].append(rating)
    return grouped


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


def stream_csv(db: Session, person_id: uuid.UUID) -> Iterator[str]:
    """The person's export, oldest session first: a header row, then batch after batch.

    The caller must already have checked that the person's data may be read. Every batch is
    a transaction of its own, closed before its rows are sent, so a slow download holds
    neither a connection nor (on SQLite) the write lock.
    """
    db.close()  # end the request's transaction (the authentication read) before streaming
    yield _encode([CSV_HEADER])
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        sessions = _session_batch(db, person_id, after)
        ratings = _ratings(db, [session.id for session in sessions]) if sessions else {}
        db.close()  # closing, unlike a rollback, leaves the loaded rows readable
        if not sessions:
            return
        yield _encode([row for session in sessions for row in _rows(session, ratings[session.id])])
        if len(sessions) < SESSIONS_PER_BATCH:
            return
        after = (sessions[-1].started_at, sessions[-1].id)
