"""A coach's read-only views of a client's data, each behind a live grant."""

import uuid

from sqlmodel import Session

from api.services import sessions as session_service
from api.services.access import Caller, readable_person
from models.release_session import SessionList, SessionPublic


def list_client_sessions(
    db: Session,
    caller: Caller,
    client_id: uuid.UUID,
    filters: session_service.SessionFilters,
    limit: int,
    cursor: str | None,
) -> SessionList:
    """A client's sessions as the client lists them; 404 without a live grant."""
    owner_id = readable_person(db, caller, client_id, "sessions:read", as_coach=True)
    return session_service.list_sessions(db, owner_id, filters, limit, cursor)


def get_client_session(
    db: Session, caller: Caller, client_id: uuid.UUID, session_id: uuid.UUID
) -> SessionPublic:
    """One of a client's sessions; 404 without a live grant or when it is not theirs."""
    owner_id = readable_person(db, caller, client_id, "sessions:read", as_coach=True)
    return session_service.get_session(db, owner_id, session_id)
