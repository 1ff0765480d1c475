"""Release sessions: create (idempotent), read, list, merge-patch, delete, batch."""

import hashlib
import uuid
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, bindparam, delete, exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.db import (
    DriverConnection,
    Executes,
    GroupCommit,
    driver_transaction,
    run_write,
    write_transaction,
)
from api.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    Unprocessable,
    field_errors,
)
from api.metrics import SESSIONS_CREATED
from api.services import pagination
from api.services.pagination import encode_cursor
from api.services.session_pages import PAGE_COLUMNS, ratings_by_session, read_page
from api.services.sync import next_feed_seq, reserve_feed_positions
from api.services.webhook_outbox import SessionEvent, enqueue_session_events, subscribed_hooks
from models.base import ordered_id, utc_now
from models.release_session import (
    BatchItemResult,
    FieldError,
    Rating,
    RatingPublic,
    ReleaseSession,
    SessionCreate,
    SessionFields,
    SessionList,
    SessionPublic,
    SessionUpdate,
)

_CONTENT_FIELDS = (
    "started_at",
    "ended_at",
    "tool",
    "water_before_ml",
    "water_after_ml",
    "felt_unwell_after",
    "notes",
)

_PUBLIC_SCALARS = tuple(name for name in SessionPublic.model_fields if name != "ratings")
# Core tables for the hot insert paths: no ORM unit of work, one executemany each.
_SESSION_TABLE = ReleaseSession.__table__  # type: ignore[attr-defined]
_RATING_TABLE = Rating.__table__  # type: ignore[attr-defined]
_INSERT_SESSION = insert(_SESSION_TABLE)
_INSERT_RATING = insert(_RATING_TABLE)
_PUBLIC_LIST = TypeAdapter(list[SessionPublic])


@dataclass(frozen=True)
class SessionFilters:
    started_from: datetime | None = None
    started_to: datetime | None = None
    region: str | None = None
    metric: str | None = None
    complete: bool | None = None


# --- reading -----------------------------------------------------------------------------


def etag(version: int) -> str:
    return f'"v{version}"'


def _etag_matches(if_match: str, version: int) -> bool:
    current = etag(version)
    for candidate in (part.strip() for part in if_match.split(",")):
        if candidate == "*" or candidate.removeprefix("W/") == current:
            return True
    return False


def _ratings_by_session(db: Session, session_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Rating]]:
    grouped: dict[uuid.UUID, list[Rating]] = {session_id: [] for session_id in session_ids}
    if not session_ids:
        return grouped
    rows = db.execute(
        select(Rating)
        .where(Rating.session_id.in_(session_ids))  # type: ignore[attr-defined]
        .order_by(Rating.session_id, Rating.position)
    ).scalars()
    for rating in rows:
        grouped[rating.session_id].append(rating)
    return grouped


def _public(row: ReleaseSession, ratings: list[Rating]) -> SessionPublic:
    return SessionPublic(
        id=row.id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        tool=row.tool,
        water_before_ml=row.water_before_ml,
        water_after_ml=row.water_after_ml,
        felt_unwell_after=row.felt_unwell_after,
        notes=row.notes,
        ratings=[
            RatingPublic(
                region=r.region, side=r.side, metric=r.metric, before=r.before, after=r.after
            )
            for r in ratings
        ],
        complete=row.complete,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def to_public_many(db: Session, rows: Sequence[Any]) -> list[SessionPublic]:
    """Public shapes for many sessions (ORM objects or column rows), with every rating loaded
    in one query and all of them validated in one call."""
    ratings = ratings_by_session(db, [row.id for row in rows if row.deleted_at is None])
    documents = []
    for row in rows:
        document = {name: getattr(row, name) for name in _PUBLIC_SCALARS}
        document["ratings"] = ratings.get(row.id, [])
        documents.append(document)
    return _PUBLIC_LIST.validate_python(documents)


def _live_session(db: Session, owner_id: uuid.UUID, session_id: uuid.UUID) -> ReleaseSession:
    row = db.get(ReleaseSession, session_id, populate_existing=True)
    if row is None or row.user_id != owner_id or row.deleted_at is not None:
        raise NotFound("No such session.")
    return row


def get_session(db: Session, owner_id: uuid.UUID, session_id: uuid.UUID) -> SessionPublic:
    row = _live_session(db, owner_id, session_id)
    return to_public_many(db, [row])[0]


def list_sessions(
    db: Session,
    owner_id: uuid.UUID,
    filters: SessionFilters,
    limit: int,
    cursor: str | None,
) -> SessionList:
    """The owner's live sessions, newest first, one page after `cursor`."""
    statement = select(*PAGE_COLUMNS).where(
        ReleaseSession.user_id == owner_id,
        ReleaseSession.deleted_at.is_(None),  # type: ignore[union-attr]
    )
    if filters.started_from is not None:
        statement = statement.where(ReleaseSession.started_at >= filters.started_from)
    if filters.started_to is not None:
        statement = statement.where(ReleaseSession.started_at <= filters.started_to)
    if filters.complete is not None:
        statement = statement.where(ReleaseSession.complete == filters.complete)
    if filters.region is not None or filters.metric is not None:
        rated = select(Rating.session_id).where(Rating.session_id == ReleaseSession.id)
        if filters.region is not None:
            rated = rated.where(Rating.region == filters.region)
        if filters.metric is not None:
            rated = rated.where(Rating.metric == filters.metric)
        statement = statement.where(exists(rated))
    statement = pagination.after(
        statement, ReleaseSession.started_at, ReleaseSession.id, cursor, descending=True
    )
    statement = statement.order_by(
        ReleaseSession.started_at.desc(),  # type: ignore[attr-defined]
        ReleaseSession.id.desc(),  # type: ignore[attr-defined]
    ).limit(limit + 1)
    documents, has_more = read_page(db, statement, limit)
    last = documents[-1] if has_more else None
    next_cursor = encode_cursor(last["started_at"], last["id"]) if last else None
    return SessionList.model_validate({"items": documents, "next_cursor": next_cursor})


# --- writing -----------------------------------------------------------------------------


def _fingerprint(fields: SessionFields) -> str:
    """A digest of the normalised body (UTC times, defaults filled) for idempotent replays."""
    document = fields.model_dump(mode="json", exclude={"id"})
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _is_complete(fields: SessionFields) -> bool:
    return all(rating.after is not None for rating in fields.ratings)


def _rating_rows(
    session_id: uuid.UUID, owner_id: uuid.UUID, fields: SessionFields
) -> list[dict[str, Any]]:
    return [
        {
            "session_id": session_id,
            "position": position,
            "user_id": owner_id,
            "started_at": fields.started_at,
            "region": rating.region,
            "side": rating.side,
            "metric": rating.metric,
            "before": rating.before,
            "after": rating.after,
        }
        for position, rating in enumerate(fields.ratings)
    ]


def _session_values(
    owner_id: uuid.UUID, session_id: uuid.UUID, fields: SessionFields, seq: int, digest: str
) -> dict[str, Any]:
    now = utc_now()
    return {
        "id": session_id,
        "user_id": owner_id,
        **{name: getattr(fields, name) for name in _CONTENT_FIELDS},
        "complete": _is_complete(fields),
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "change_seq": seq,
        "create_hash": digest,
    }


def _created_public(values: dict[str, Any], fields: SessionFields) -> SessionPublic:
    """The response of a create: the row about to be stored, with the body's ratings read
    straight off their models (one validation in pydantic-core, no intermediate dicts)."""
    document = {name: values[name] for name in _PUBLIC_SCALARS}
    document["ratings"] = fields.ratings
    return SessionPublic.model_validate(document, from_attributes=True)


# (holder, create digest, deleted) of a stored session id.
StoredId = tuple[uuid.UUID, str, bool]


_STORED_ID = select(
    _SESSION_TABLE.c.id,
    _SESSION_TABLE.c.user_id,
    _SESSION_TABLE.c.create_hash,
    _SESSION_TABLE.c.deleted_at,
).where(_SESSION_TABLE.c.id.in_(bindparam("ids", expanding=True)))


def _stored_ids(connection: Executes, session_ids: list[uuid.UUID]) -> dict[uuid.UUID, StoredId]:
    rows = connection.execute(_STORED_ID, {"ids": session_ids})
    return {row[0]: (row[1], row[2], row[3] is not None) for row in rows}


def _is_replay(stored: StoredId, owner_id: uuid.UUID, digest: str) -> bool:
    """Is this body the very one that created the stored session (and is it still there)?"""
    holder, stored_digest, deleted = stored
    return holder == owner_id and stored_digest == digest and not deleted


@dataclass(frozen=True)
class NewSession:
    """A create, worked out before it reaches the database: its rows and its response."""

    owner_id: uuid.UUID
    session_id: uuid.UUID
    digest: str
    values: dict[str, Any]
    ratings: list[dict[str, Any]]
    created: SessionPublic


class IdTaken(Exception):
    """The id of a create is taken: a replay of that very create, or someone else's id."""


def new_session(owner_id: uuid.UUID, data: SessionCreate) -> NewSession:
    digest = _fingerprint(data)
    session_id = data.id or ordered_id()
    values = _session_values(owner_id, session_id, data, 0, digest)
    ratings = _rating_rows(session_id, owner_id, data)
    return NewSession(owner_id, session_id, digest, values, ratings, _created_public(values, data))


def insert_sessions(connection: DriverConnection, creates: list[NewSession]) -> list[SessionPublic]:
    """Creates of any owners, in the caller's transaction, which commits, in a fixed number
    of statements: every owner's feed positions reserved (and rows locked) at once, one
    INSERT for all the sessions, one for all their ratings, one look-up of the owners'
    webhooks. Raises IdTaken, and the caller rolls back, when any id is taken."""
    by_owner: dict[uuid.UUID, list[NewSession]] = {}
    for new in creates:
        by_owner.setdefault(new.owner_id, []).append(new)
    first_seq = reserve_feed_positions(connection, {o: len(owned) for o, owned in by_owner.items()})
    ids = [new.session_id for new in creates]
    if len(set(ids)) < len(ids) or _stored_ids(connection, ids):
        raise IdTaken()
    sessions = [
        {**new.values, "change_seq": first_seq[owner_id] + offset}
        for owner_id, owned in by_owner.items()
        for offset, new in enumerate(owned)
    ]
    connection.execute(_INSERT_SESSION, sessions)
    connection.execute(_INSERT_RATING, [rating for new in creates for rating in new.ratings])
    hooks = subscribed_hooks(connection, list(by_owner))
    for owner_id, owned in by_owner.items():
        if owner_id in hooks:
            events = [("session.created", new.session_id, new.created) for new in owned]
            enqueue_session_events(connection, owner_id, events, hooks[owner_id])
    return [new.created for new in creates]


def replayed_session(engine: Engine, new: NewSession) -> SessionPublic:
    """For a create whose id is taken: the stored session when this is a replay of the very
    create that stored it, else 409."""
    with Session(engine, expire_on_commit=False) as db:
        stored = _stored_ids(db.connection(), [new.session_id]).get(new.session_id)
        if stored is None or not _is_replay(stored, new.owner_id, new.digest):
            raise Conflict("A different session already exists under this id.")
        return get_session(db, new.owner_id, new.session_id)


async def create_session(
    creates: GroupCommit[NewSession, SessionPublic],
    scope: MutableMapping[str, Any],
    owner_id: uuid.UUID,
    data: SessionCreate,
) -> tuple[SessionPublic, bool]:
    """Create a session; returns (session, created). A replay of the same body is not created.

    The hottest write there is: worked out before the database (new_session), then written
    on the driver (api/db.py, DriverConnection) together with the creates that arrive
    meanwhile, in one transaction (GroupCommit running insert_sessions).
    """
    new = new_session(owner_id, data)
    try:
        return await creates.submit(new), True
    except IdTaken:
        replayed = await run_write(creates.engine, creates.gate, scope, replayed_session, new)
        return replayed, False


def _ratings_from(
    session_id: uuid.UUID, owner_id: uuid.UUID, fields: SessionFields
) -> list[Rating]:
    return [Rating(**values) for values in _rating_rows(session_id, owner_id, fields)]


def _current_fields(row: ReleaseSession, ratings: list[Rating]) -> dict[str, Any]:
    document: dict[str, Any] = {name: getattr(row, name) for name in _CONTENT_FIELDS}
    document["ratings"] = [
        {
            "region": r.region,
            "side": r.side,
            "metric": r.metric,
            "before": r.before,
            "after": r.after,
        }
        for r in ratings
    ]
    return document


def _validated(document: dict[str, Any]) -> SessionFields:
    try:
        return SessionFields.model_validate(document)
    except ValidationError as error:
        errors = [
            {"loc": ["body", *item["loc"]], "msg": item["msg"]}
            for item in field_errors(error.errors())
        ]
        first = errors[0]
        raise Unprocessable(
            f"{'.'.join(str(part) for part in first['loc'][1:])}: {first['msg']}", errors
        ) from None


def update_session(
    db: Session,
    owner_id: uuid.UUID,
    session_id: uuid.UUID,
    patch: SessionUpdate,
    if_match: str | None,
) -> SessionPublic:
    with write_transaction(db):
        seq = next_feed_seq(db.connection(), owner_id)
        row = _live_session(db, owner_id, session_id)
        if if_match is not None and not _etag_matches(if_match, row.version):
            raise PreconditionFailed("The session has changed since it was read (stale If-Match).")
        ratings = _ratings_by_session(db, [row.id])[row.id]
        current = _current_fields(row, ratings)
        changes = patch.model_dump(exclude_unset=True)
        if "ratings" in changes:
            changes["ratings"] = [rating.model_dump() for rating in patch.ratings or []]
        merged = _validated({**current, **changes})
        if merged == _validated(current):
            db.rollback()
            return _public(row, ratings)
        for name in _CONTENT_FIELDS:
            setattr(row, name, getattr(merged, name))
        row.complete = _is_complete(merged)
        row.version += 1
        row.updated_at = utc_now()
        row.change_seq = seq
        db.add(row)
        db.execute(delete(Rating).where(Rating.session_id == row.id))  # type: ignore[arg-type]
        db.connection().execute(_INSERT_RATING, _rating_rows(row.id, owner_id, merged))
        updated = _public(row, _ratings_from(row.id, owner_id, merged))
        enqueue_session_events(db.connection(), owner_id, [("session.updated", row.id, updated)])
        db.commit()
        return updated


def delete_session(
    db: Session, owner_id: uuid.UUID, session_id: uuid.UUID, if_match: str | None = None
) -> None:
    """Delete the session's content, keeping a tombstone for the sync feed."""
    with write_transaction(db):
        seq = next_feed_seq(db.connection(), owner_id)
        row = _live_session(db, owner_id, session_id)
        if if_match is not None and not _etag_matches(if_match, row.version):
            raise PreconditionFailed("The session has changed since it was read (stale If-Match).")
        now = utc_now()
        row.deleted_at = now
        row.updated_at = now
        row.version += 1
        row.change_seq = seq
        for name in (
            "ended_at",
            "tool",
            "water_before_ml",
            "water_after_ml",
            "felt_unwell_after",
            "notes",
        ):
            setattr(row, name, None)
        db.add(row)
        db.execute(delete(Rating).where(Rating.session_id == row.id))  # type: ignore[arg-type]
        enqueue_session_events(db.connection(), owner_id, [("session.deleted", row.id, None)])
        db.commit()


# --- batch -------------------------------------------------------------------------------


def _item_id(item: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(item["id"])) if item.get("id") is not None else None
    except (ValueError, TypeError):
        return None


def create_batch(
    engine: Engine, owner_id: uuid.UUID, items: list[dict[str, Any]]
) -> list[BatchItemResult]:
    """Each item handled as a single create would be, in one transaction; results in order."""
    parsed: list[SessionCreate | list[FieldError]] = []
    for item in items:
        try:
            parsed.append(SessionCreate.model_validate(item))
        except ValidationError as error:
            parsed.append([FieldError(**e) for e in field_errors(error.errors())])
    valid = [entry for entry in parsed if isinstance(entry, SessionCreate)]
    with driver_transaction(engine) as connection:
        first_seq = next_feed_seq(connection, owner_id, max(len(valid), 1))
        known_ids = [entry.id for entry in valid if entry.id is not None]
        existing = _stored_ids(connection, known_ids) if known_ids else {}

        results: list[BatchItemResult] = []
        session_rows: list[dict[str, Any]] = []
        rating_rows: list[dict[str, Any]] = []
        created: list[SessionEvent] = []
        seq = first_seq
        for item, entry in zip(items, parsed, strict=True):
            if not isinstance(entry, SessionCreate):
                results.append(BatchItemResult(id=_item_id(item), status="invalid", errors=entry))
                continue
            digest = _fingerprint(entry)
            session_id = entry.id or ordered_id()
            if session_id in existing:
                same = _is_replay(existing[session_id], owner_id, digest)
                results.append(
                    BatchItemResult(id=session_id, status="unchanged" if same else "conflict")
                )
                continue
            values = _session_values(owner_id, session_id, entry, seq, digest)
            session_rows.append(values)
            created.append(("session.created", session_id, partial(_created_public, values, entry)))
            rating_rows.extend(_rating_rows(session_id, owner_id, entry))
            existing[session_id] = (owner_id, digest, False)
            results.append(BatchItemResult(id=session_id, status="created"))
            seq += 1
        if session_rows:
            try:
                connection.execute(_INSERT_SESSION, session_rows)
                connection.execute(_INSERT_RATING, rating_rows)
                enqueue_session_events(connection, owner_id, created)
            except IntegrityError:
                raise Conflict(
                    "Another request created one of these ids at the same time; retry the batch."
                ) from None
        connection.commit()
    SESSIONS_CREATED.inc(len(session_rows))
    return results
