"""Release sessions: create (idempotent), read, list, merge-patch, delete, batch.

Every write goes one way: a write transaction on the driver (api/driver.py: the prebuilt Core
statements below, compiled once) that first reserves the owner's feed positions
(sync.reserve_feed_positions, which locks the account row and answers 401 when the account is
gone), then changes the rows, queues the webhook events of the change in the same transaction,
and commits once. A write that leaves a session with a worse rating (figures.is_worse, decided
from the ratings in hand) when it had none also sets its `flagged_at` and queues
`session.flagged`; one that leaves it with none clears `flagged_at`. Single creates take that
way in groups: concurrent creates share one transaction (create_sessions, run by a
GroupCommit).
"""

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Engine, bindparam, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.analytics.figures import is_worse
from api.driver import DriverConnection, driver_transaction, request_write
from api.errors import Conflict, NotFound, PreconditionFailed, Unprocessable, field_errors
from api.group_commit import GroupCommit
from api.metrics import SESSIONS_CREATED
from api.services import pagination
from api.services.pagination import encode_cursor
from api.services.session_pages import PAGE_COLUMNS, PUBLIC_FIELDS, ratings_by_session, read_page
from api.services.sync import next_feed_seq, reserve_feed_positions
from api.services.webhook_outbox import (
    SessionEvent,
    enqueue_session_events,
    subscribed_hooks,
    withdraw_session_events,
)
from models.base import ordered_id, utc_now
from models.release_session import (
    RATING_TABLE,
    SESSION_TABLE,
    BatchItemResult,
    FieldError,
    Rating,
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
# What a tombstone keeps of its session: its id, start, owner and feed position.
_CLEARED_BY_DELETE = tuple(name for name in _CONTENT_FIELDS if name != "started_at")
# What a change (a patch, a delete) sets.
_CHANGED_FIELDS = (
    *_CONTENT_FIELDS,
    "complete",
    "version",
    "updated_at",
    "deleted_at",
    "change_seq",
    "flagged_at",
)
_SESSION_FIELDS = tuple(SESSION_TABLE.c.keys())
_RATING_FIELDS = ("region", "side", "metric", "before", "after")

# The statements of every write, built once.
_INSERT_SESSION = insert(SESSION_TABLE)
_INSERT_RATING = insert(RATING_TABLE)
_UPDATE_SESSION = (
    update(SESSION_TABLE)
    .where(SESSION_TABLE.c.id == bindparam("session_id"))
    .values({name: bindparam(f"new_{name}") for name in _CHANGED_FIELDS})
)
_RATINGS_OF = (
    select(*(RATING_TABLE.c[name] for name in _RATING_FIELDS))
    .where(RATING_TABLE.c.session_id == bindparam("session_id"))
    .order_by(RATING_TABLE.c.position)
)
_DELETE_RATINGS = delete(RATING_TABLE).where(RATING_TABLE.c.session_id == bindparam("session_id"))
_LIVE_SESSION = select(*SESSION_TABLE.c).where(
    SESSION_TABLE.c.id == bindparam("session_id"),
    SESSION_TABLE.c.user_id == bindparam("owner_id"),
    SESSION_TABLE.c.deleted_at.is_(None),
)
_STORED_IDS = select(
    SESSION_TABLE.c.id,
    SESSION_TABLE.c.user_id,
    SESSION_TABLE.c.create_hash,
    SESSION_TABLE.c.deleted_at,
).where(SESSION_TABLE.c.id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class SessionFilters:
    started_from: datetime | None = None
    started_to: datetime | None = None
    region: str | None = None
    metric: str | None = None
    complete: bool | None = None


# --- the public shape --------------------------------------------------------------------


def etag(version: int) -> str:
    return f'"v{version}"'


def _check_if_match(if_match: str | None, version: int) -> None:
    """412 unless `if_match` (when given) names the current version, or is `*`."""
    if if_match is None:
        return
    current = etag(version)
    for candidate in (part.strip() for part in if_match.split(",")):
        if candidate == "*" or candidate.removeprefix("W/") == current:
            return
    raise PreconditionFailed("The session has changed since it was read (stale If-Match).")


def public_session(values: Mapping[str, Any], ratings: Sequence[Any]) -> SessionPublic:
    """The public shape of a stored session: its column values and its ratings (dicts or
    rating models), validated in one call."""
    document = {name: values[name] for name in PUBLIC_FIELDS}
    document["ratings"] = ratings
    return SessionPublic.model_validate(document, from_attributes=True)


# --- reading -----------------------------------------------------------------------------


def _live_row(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The one row _LIVE_SESSION found, by column name; 404 when it found none."""
    for row in rows:
        return dict(zip(_SESSION_FIELDS, row, strict=True))
    raise NotFound("No such session.")


def _live_session(
    connection: DriverConnection, owner_id: uuid.UUID, session_id: uuid.UUID
) -> dict[str, Any]:
    return _live_row(
        connection.execute(_LIVE_SESSION, {"session_id": session_id, "owner_id": owner_id})
    )


def _ratings_of(connection: DriverConnection, session_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = connection.execute(_RATINGS_OF, {"session_id": session_id})
    return [dict(zip(_RATING_FIELDS, row, strict=True)) for row in rows]


def get_session(db: Session, owner_id: uuid.UUID, session_id: uuid.UUID) -> SessionPublic:
    found = db.connection().execute(_LIVE_SESSION, {"session_id": session_id, "owner_id": owner_id})
    row = _live_row(list(found))
    return public_session(row, ratings_by_session(db, [session_id])[session_id])


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


# --- the rows of a write -----------------------------------------------------------------


def _fingerprint(fields: SessionFields) -> str:
    """A digest of the normalised body (UTC times, defaults filled) for idempotent replays."""
    document = fields.model_dump(mode="json", exclude={"id"})
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _content(fields: SessionFields) -> dict[str, Any]:
    """The session columns the body decides."""
    values = {name: getattr(fields, name) for name in _CONTENT_FIELDS}
    values["complete"] = all(rating.after is not None for rating in fields.ratings)
    return values


def _has_worse_rating(fields: SessionFields) -> bool:
    """Does the session have a worse rating (figures.is_worse)? Decided from the ratings the
    write has in hand, so flagging costs the write no query."""
    return any(is_worse(rating.metric, rating.before, rating.after) for rating in fields.ratings)


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


def _new_row(
    owner_id: uuid.UUID, session_id: uuid.UUID, fields: SessionFields, seq: int, digest: str
) -> dict[str, Any]:
    now = utc_now()
    return {
        "id": session_id,
        "user_id": owner_id,
        **_content(fields),
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "change_seq": seq,
        "create_hash": digest,
        # A new session with a worse rating is flagged by its create (session.flagged).
        "flagged_at": now if _has_worse_rating(fields) else None,
    }


def _insert(
    connection: DriverConnection, sessions: list[dict[str, Any]], ratings: list[Any]
) -> None:
    connection.execute(_INSERT_SESSION, sessions)
    if ratings:
        connection.execute(_INSERT_RATING, ratings)


def _commit_creates(connection: DriverConnection, created: int) -> None:
    """Commit a write that created sessions, and count them (the one place that does)."""
    connection.commit()
    SESSIONS_CREATED.inc(created)


# (holder, create digest, deleted) of a stored session id.
StoredId = tuple[uuid.UUID, str, bool]


def _stored_ids(
    connection: DriverConnection, session_ids: list[uuid.UUID]
) -> dict[uuid.UUID, StoredId]:
    rows = connection.execute(_STORED_IDS, {"ids": session_ids})
    return {row[0]: (row[1], row[2], row[3] is not None) for row in rows}


def _is_replay(stored: StoredId, owner_id: uuid.UUID, digest: str) -> bool:
    """Is this body the very one that created the stored session (and is it still there)?"""
    holder, stored_digest, deleted = stored
    return holder == owner_id and stored_digest == digest and not deleted


# --- creating ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    """A create, worked out before it reaches the database: its rows and its response."""

    owner_id: uuid.UUID
    session_id: uuid.UUID
    digest: str
    row: dict[str, Any]
    ratings: list[dict[str, Any]]
    created: SessionPublic
    token_version: int | None = None  # the writing access token's (next_feed_seq)


def new_session(
    owner_id: uuid.UUID, data: SessionCreate, token_version: int | None = None
) -> NewSession:
    digest = _fingerprint(data)
    session_id = data.id or ordered_id()
    row = _new_row(owner_id, session_id, data, 0, digest)
    ratings = _rating_rows(session_id, owner_id, data)
    created = public_session(row, data.ratings)
    return NewSession(owner_id, session_id, digest, row, ratings, created, token_version)


class IdTaken(Exception):
    """The id of a create is taken. `replay`: the stored session when the create is a replay
    of the very create that stored it (None: someone else's id, or not looked at, in a group
    that is then written again one create at a time). `race`: another transaction stored it
    after this one looked, so trying again finds it."""

    def __init__(self, replay: SessionPublic | None = None, *, race: bool = False) -> None:
        super().__init__("session id taken")
        self.replay = replay
        self.race = race


def create_sessions(engine: Engine, creates: list[NewSession]) -> list[SessionPublic]:
    """Creates of any owners in one transaction and a fixed number of statements: every
    owner's feed positions reserved (and rows locked) at once, one INSERT for all the
    sessions, one for all their ratings, one look-up of the owners' webhooks.

    Raises IdTaken, writing nothing, when any id is taken (alone: with the replay's answer).

    Why a replay is found by the look-up and not by the INSERT, across processes too: the
    copies of one create have one owner, whose account row the first statement locks until
    commit, so a copy that waited there looks its id up after the other copy committed (READ
    COMMITTED, which the engine pins: each statement sees what committed before it). Only
    another owner's create of the same id can pass the look-up and collide at the INSERT;
    PostgreSQL's INSERT waits for that transaction's outcome, so when it fails the row is
    committed and the second try (create_session) sees it: 409.
    """
    by_owner: dict[uuid.UUID, list[NewSession]] = {}
    versions: dict[uuid.UUID, set[int]] = {}
    for new in creates:
        by_owner.setdefault(new.owner_id, []).append(new)
        if new.token_version is not None:
            versions.setdefault(new.owner_id, set()).add(new.token_version)
    with driver_transaction(engine) as connection:
        counts = {owner_id: len(owned) for owner_id, owned in by_owner.items()}
        first_seq = reserve_feed_positions(connection, counts, versions)
        ids = [new.session_id for new in creates]
        taken = _stored_ids(connection, ids)
        if len(set(ids)) < len(ids) or taken:
            raise IdTaken(_replay(connection, creates[0], taken) if len(creates) == 1 else None)
        rows = [
            {**new.row, "change_seq": first_seq[owner_id] + offset}
            for owner_id, owned in by_owner.items()
            for offset, new in enumerate(owned)
        ]
        try:
            _insert(connection, rows, [rating for new in creates for rating in new.ratings])
        except IntegrityError:
            raise IdTaken(race=True) from None
        hooks = subscribed_hooks(connection, list(by_owner))
        for owner_id, owned in by_owner.items():
            if owner_id in hooks:
                events = [
                    event
                    for new in owned
                    for event in _created_events(new.session_id, new.row, new.created)
                ]
                enqueue_session_events(connection, owner_id, events, hooks[owner_id])
        _commit_creates(connection, len(rows))
    return [new.created for new in creates]


def _created_events(
    session_id: uuid.UUID,
    row: Mapping[str, Any],
    created: SessionPublic | Callable[[], SessionPublic],
) -> list[SessionEvent]:
    """session.created, and session.flagged when the create flagged the session."""
    events: list[SessionEvent] = [("session.created", session_id, created)]
    if row["flagged_at"] is not None:
        events.append(("session.flagged", session_id, created))
    return events


def _replay(
    connection: DriverConnection, new: NewSession, taken: dict[uuid.UUID, StoredId]
) -> SessionPublic | None:
    stored = taken.get(new.session_id)
    if stored is None or not _is_replay(stored, new.owner_id, new.digest):
        return None
    row = _live_session(connection, new.owner_id, new.session_id)
    return public_session(row, _ratings_of(connection, new.session_id))


SessionCreates = GroupCommit[NewSession, SessionPublic]


async def create_session(
    creates: SessionCreates,
    owner_id: uuid.UUID,
    data: SessionCreate,
    token_version: int | None = None,
) -> tuple[SessionPublic, bool]:
    """Create a session, together with the creates that arrive meanwhile (`creates`: the
    app's GroupCommit of create_sessions); returns (session, created). The same body again
    is a replay: the stored session, not created. A different body under a taken id: 409.
    `token_version`: the access token's credential version (None: an API key)."""
    new = new_session(owner_id, data, token_version)
    for attempt in range(2):
        try:
            return await creates.submit(new), True
        except IdTaken as taken:
            if taken.race and attempt == 0:
                continue  # the other create has committed by now: this one sees it
            if taken.replay is None:
                break
            return taken.replay, False
    raise Conflict("A different session already exists under this id.")


def create_batch(
    db: Session,
    owner_id: uuid.UUID,
    items: list[dict[str, Any]],
    token_version: int | None = None,
) -> list[BatchItemResult]:
    """Each item handled as a single create would be, in one transaction; results in order."""
    parsed: list[SessionCreate | list[FieldError]] = []
    for item in items:
        try:
            parsed.append(SessionCreate.model_validate(item))
        except ValidationError as error:
            parsed.append([FieldError(**e) for e in field_errors(error.errors())])
    valid = [entry for entry in parsed if isinstance(entry, SessionCreate)]
    with request_write(db) as connection:
        seq = next_feed_seq(connection, owner_id, max(len(valid), 1), token_version)
        known_ids = [entry.id for entry in valid if entry.id is not None]
        existing = _stored_ids(connection, known_ids) if known_ids else {}

        results: list[BatchItemResult] = []
        rows: list[dict[str, Any]] = []
        ratings: list[dict[str, Any]] = []
        events: list[SessionEvent] = []
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
            row = _new_row(owner_id, session_id, entry, seq, digest)
            rows.append(row)
            ratings.extend(_rating_rows(session_id, owner_id, entry))
            # Built only when a webhook wants it.
            created = partial(public_session, row, entry.ratings)
            events.extend(_created_events(session_id, row, created))
            existing[session_id] = (owner_id, digest, False)
            results.append(BatchItemResult(id=session_id, status="created"))
            seq += 1
        if rows:
            try:
                _insert(connection, rows, ratings)
            except IntegrityError:
                raise Conflict(
                    "Another request created one of these ids at the same time; retry the batch."
                ) from None
            enqueue_session_events(connection, owner_id, events)
        _commit_creates(connection, len(rows))
    return results


def _item_id(item: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(item["id"])) if item.get("id") is not None else None
    except (ValueError, TypeError):
        return None


# --- changing ----------------------------------------------------------------------------


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
    token_version: int | None = None,
) -> SessionPublic:
    with request_write(db) as connection:
        seq = next_feed_seq(connection, owner_id, 1, token_version)
        row = _live_session(connection, owner_id, session_id)
        _check_if_match(if_match, row["version"])
        ratings = _ratings_of(connection, session_id)
        current = {name: row[name] for name in _CONTENT_FIELDS}
        current["ratings"] = ratings
        changes = patch.model_dump(exclude_unset=True)
        if "ratings" in changes:
            changes["ratings"] = [rating.model_dump() for rating in patch.ratings or []]
        merged = _validated({**current, **changes})
        if merged == _validated(current):
            return public_session(row, ratings)  # nothing changes; nothing is committed
        now = utc_now()
        changed = {**row, **_content(merged), "version": row["version"] + 1}
        changed.update(updated_at=now, change_seq=seq)
        # Flagged by the write that leaves it worse when it was not; a write that keeps it
        # worse keeps the flag (and sends nothing), one that leaves it not worse clears it, so
        # that a later worsening is a first again.
        newly_flagged = False
        if not _has_worse_rating(merged):
            changed["flagged_at"] = None
        elif row["flagged_at"] is None:
            changed["flagged_at"] = now
            newly_flagged = True
        _change(connection, session_id, changed)
        connection.execute(_INSERT_RATING, _rating_rows(session_id, owner_id, merged))
        updated = public_session(changed, merged.ratings)
        events: list[SessionEvent] = [("session.updated", session_id, updated)]
        if newly_flagged:
            events.append(("session.flagged", session_id, updated))
        enqueue_session_events(connection, owner_id, events)
        connection.commit()
        return updated


def delete_session(
    db: Session,
    owner_id: uuid.UUID,
    session_id: uuid.UUID,
    if_match: str | None = None,
    token_version: int | None = None,
) -> None:
    """Delete the session's content, keeping a tombstone for the sync feed."""
    with request_write(db) as connection:
        seq = next_feed_seq(connection, owner_id, 1, token_version)
        row = _live_session(connection, owner_id, session_id)
        _check_if_match(if_match, row["version"])
        now = utc_now()
        tombstone = {**row, **dict.fromkeys(_CLEARED_BY_DELETE), "version": row["version"] + 1}
        tombstone.update(deleted_at=now, updated_at=now, change_seq=seq, flagged_at=None)
        _change(connection, session_id, tombstone)
        # The content leaves the outbox too: queued events of this session are never sent.
        withdraw_session_events(connection, session_id, now)
        enqueue_session_events(connection, owner_id, [("session.deleted", session_id, None)])
        connection.commit()


def _change(connection: DriverConnection, session_id: uuid.UUID, values: dict[str, Any]) -> None:
    """Store the session's new values (_CHANGED_FIELDS of `values`); its ratings are deleted,
    for the caller to insert the new ones, if any."""
    new = {f"new_{name}": values[name] for name in _CHANGED_FIELDS}
    connection.execute(_UPDATE_SESSION, {"session_id": session_id, **new})
    connection.execute(_DELETE_RATINGS, {"session_id": session_id})
