"""Pages of sessions with their ratings, for the hot reads (the session list, the sync feed).

Two queries per page: the page of sessions (filtered, ordered and limited by the caller), then
the ratings of its live sessions by primary key. Rows are plain tuples, never ORM objects, and
the page is validated into its response model in one call. (A single query joining the page
to its ratings was measured slower on PostgreSQL: the planner hashes the whole rating table.)
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlmodel import Session

from models.release_session import RATING_TABLE, SESSION_TABLE, SessionPublic

PUBLIC_FIELDS = tuple(name for name in SessionPublic.model_fields if name != "ratings")
# What a page query selects: the public fields, and what the feed and cursors need.
PAGE_COLUMNS = tuple(SESSION_TABLE.c[name] for name in (*PUBLIC_FIELDS, "deleted_at", "change_seq"))
_PAGE_FIELDS = tuple(column.name for column in PAGE_COLUMNS)
_RATING_FIELDS = ("region", "side", "metric", "before", "after")
_RATING_COLUMNS = tuple(RATING_TABLE.c[name] for name in _RATING_FIELDS)


def ratings_by_session(db: Session, session_ids: Sequence[Any]) -> dict[Any, list[dict[str, Any]]]:
    """The ratings of these sessions (dicts in their stored order), from one column query."""
    grouped: dict[Any, list[dict[str, Any]]] = {session_id: [] for session_id in session_ids}
    if not grouped:
        return grouped
    rows = db.connection().execute(
        select(RATING_TABLE.c.session_id, *_RATING_COLUMNS)
        .where(RATING_TABLE.c.session_id.in_(list(grouped)))
        .order_by(RATING_TABLE.c.session_id, RATING_TABLE.c.position)
    )
    for row in rows:
        grouped[row[0]].append(dict(zip(_RATING_FIELDS, row[1:], strict=True)))
    return grouped


def read_page(db: Session, page: Select[Any], limit: int) -> tuple[list[dict[str, Any]], bool]:
    """The first `limit` sessions of `page` (a select of PAGE_COLUMNS, ordered, limited to
    `limit + 1` rows) as documents: every PAGE_COLUMNS field plus `ratings` (none for a
    tombstone); and whether there were more."""
    documents = [dict(zip(_PAGE_FIELDS, row, strict=True)) for row in db.connection().execute(page)]
    has_more = len(documents) > limit
    documents = documents[:limit]
    ratings = ratings_by_session(
        db, [document["id"] for document in documents if document["deleted_at"] is None]
    )
    for document in documents:
        document["ratings"] = ratings.get(document["id"], [])
    return documents, has_more
