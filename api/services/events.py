"""Session events: the one hook every session write path calls before its commit."""

import uuid
from collections.abc import Sequence

from sqlmodel import Session

from api import metrics
from api.services import webhooks
from api.services.webhooks import SessionEvent


def publish_session_events(
    db: Session, owner_id: uuid.UUID, events: Sequence[SessionEvent]
) -> None:
    """Queue webhook deliveries for the events and count created sessions, both taking effect
    only if the caller's transaction commits. Does not commit."""
    webhooks.enqueue_session_events(db, owner_id, events)
    created = sum(
        1 for event_type, _session_id, _session in events if event_type == "session.created"
    )
    if created:
        metrics.count_sessions_created_on_commit(db, created)
