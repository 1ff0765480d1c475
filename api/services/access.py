"""Who may read whose data: the one authorization door every read path goes through."""

import uuid
from dataclasses import dataclass

from sqlmodel import Session, select

from api.errors import Forbidden, NotFound
from models.api_key import ALL_SCOPES
from models.coaching import Grant


@dataclass(frozen=True)
class Caller:
    """The authenticated person and what this credential may do."""

    user_id: uuid.UUID
    scopes: frozenset[str] = ALL_SCOPES
    api_key_id: uuid.UUID | None = None
    # An access token's credential version (`ver`); it must still be the account's. None for
    # an API key, which a password change leaves working.
    token_version: int | None = None


def require_scope(caller: Caller, scope: str) -> None:
    if scope not in caller.scopes:
        raise Forbidden(f"This API key lacks the {scope!r} scope.")


def has_live_grant(db: Session, coach_id: uuid.UUID, client_id: uuid.UUID) -> bool:
    statement = (
        select(Grant.id)
        .where(Grant.coach_id == coach_id, Grant.client_id == client_id)
        .where(Grant.revoked_at.is_(None))  # type: ignore[union-attr]
        .limit(1)
    )
    return db.exec(statement).first() is not None


def readable_person(
    db: Session, caller: Caller, person_id: uuid.UUID, scope: str, *, as_coach: bool = False
) -> uuid.UUID:
    """The person id if the caller may read their data with `scope`; 404 otherwise.

    A person reads their own data; a coach reads a client's while a grant is live (an API
    key also needs `clients:read`). Anything else is indistinguishable from a missing person.

    `as_coach` is for the `/v1/clients/{client_id}/...` paths: the credential must carry
    `clients:read` (403 otherwise, whoever the client is), and only a live grant opens the
    door: nobody is their own client.
    """
    require_scope(caller, scope)
    if as_coach:
        require_scope(caller, "clients:read")
    elif person_id == caller.user_id:
        return person_id
    if "clients:read" in caller.scopes and has_live_grant(db, caller.user_id, person_id):
        return person_id
    raise NotFound("No such client.")


def readable_client(db: Session, caller: Caller, client_id: uuid.UUID, scope: str) -> uuid.UUID:
    """The coach's summary door: like readable_person, but one's own id is 404 too (nobody is
    their own client); a credential without `clients:read` finds no client (404), as this
    path has always answered."""
    if client_id == caller.user_id:
        require_scope(caller, scope)
        raise NotFound("No such client.")
    return readable_person(db, caller, client_id, scope)
