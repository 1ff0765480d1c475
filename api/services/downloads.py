"""Downloads (the CSV and FHIR exports): read in batches, each batch in a short transaction
and database turn of its own, so that a client that reads slowly, or never, holds nothing.

A person with ten years of data never sits in memory at once: each batch is the next
`batch_size` sessions after the previous batch's last (started_at, id), along the
(user_id, started_at, id) index, with their ratings.

What a download contains is fixed when it begins:

- the sessions that existed then (`created_at` at or before its start; a session created
  later is left out), in the requested `from`/`to` range of `started_at`;
- each as its batch finds it, and a session deleted meanwhile is left out: deleted means gone.

Every batch checks again that the caller may still read the person. Once a coach's grant is
revoked, or the account is gone, the next batch raises `DownloadStopped` and the download ends
incomplete (the connection is closed), so a client never takes a cut-off export for a whole one.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, or_, select
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from api.errors import NotFound, ServiceUnavailable
from api.gate import DatabaseGate
from api.services.access import Caller, readable_person
from models.base import utc_now
from models.release_session import Rating, ReleaseSession
from models.user import User


class DownloadStopped(Exception):
    """The download cannot go on (access ended, or the database stayed busy): it ends
    incomplete. The message says why, in words that name nobody."""


@dataclass(frozen=True)
class Batch:
    display_name: str  # the person's, as the batch found it
    sessions: list[ReleaseSession]  # oldest first
    ratings: dict[uuid.UUID, list[Rating]]  # by session id, in the order they were logged


@dataclass(frozen=True)
class Download:
    caller: Caller
    person_id: uuid.UUID
    as_coach: bool  # read through /v1/clients/{id}/...: needs a live grant
    started_from: datetime | None
    started_to: datetime | None
    batch_size: int
    began_at: datetime


def begin(
    db: Session,
    caller: Caller,
    person_id: uuid.UUID,
    *,
    as_coach: bool,
    started_from: datetime | None,
    started_to: datetime | None,
    batch_size: int,
) -> tuple[Download, Batch]:
    """Check access (404 as for anyone unknown) and read the first batch, in the request's own
    transaction: an error before the first byte is still a proper problem response."""
    person_id = readable_person(db, caller, person_id, "sessions:read", as_coach=as_coach)
    download = Download(
        caller, person_id, as_coach, started_from, started_to, batch_size, utc_now()
    )
    first = _read(db, download, None)
    db.close()  # end the request's transaction now; the stream holds nothing
    return download, first


async def batches(
    gate: DatabaseGate, engine: Engine, download: Download, first: Batch
) -> AsyncIterator[Batch]:
    """The download's batches, oldest session first; each after the first read in a turn and
    a transaction of its own, released before the batch is handed on to be sent."""
    batch = first
    while True:
        yield batch
        if len(batch.sessions) < download.batch_size:
            return
        last = batch.sessions[-1]
        try:
            async with gate.turn({}):
                batch = await run_in_threadpool(
                    read_batch, engine, download, (last.started_at, last.id)
                )
        except ServiceUnavailable:  # no turn came free in time: no answer can say so now
            raise DownloadStopped("the database stayed busy") from None


def read_batch(
    engine: Engine, download: Download, after: tuple[datetime, uuid.UUID] | None
) -> Batch:
    """The batch after `after`, once access is confirmed again (DownloadStopped if not)."""
    with Session(engine) as db:
        try:
            readable_person(
                db, download.caller, download.person_id, "sessions:read", as_coach=download.as_coach
            )
        except NotFound:
            raise DownloadStopped("the caller may no longer read this person") from None
        return _read(db, download, after)


def _read(db: Session, download: Download, after: tuple[datetime, uuid.UUID] | None) -> Batch:
    person = db.get(User, download.person_id)
    if person is None:  # the account is gone (its own export, or a coach's)
        raise DownloadStopped("the account is gone")
    sessions = _sessions(db, download, after)
    ratings = _ratings(db, [session.id for session in sessions]) if sessions else {}
    return Batch(person.display_name, sessions, ratings)


def _sessions(
    db: Session, download: Download, after: tuple[datetime, uuid.UUID] | None
) -> list[ReleaseSession]:
    started_at, session_id = col(ReleaseSession.started_at), col(ReleaseSession.id)
    statement = select(ReleaseSession).where(
        col(ReleaseSession.user_id) == download.person_id,
        col(ReleaseSession.deleted_at).is_(None),
        col(ReleaseSession.created_at) <= download.began_at,
    )
    if download.started_from is not None:
        statement = statement.where(started_at >= download.started_from)
    if download.started_to is not None:
        statement = statement.where(started_at <= download.started_to)
    if after is not None:
        statement = statement.where(
            or_(started_at > after[0], and_(started_at == after[0], session_id > after[1]))
        )
    statement = statement.order_by(started_at, session_id).limit(download.batch_size)
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
