"""webhook deliveries keep their payload only while it may still be sent

The payload (the event's body, with the session's content) becomes nullable: it is cleared
once a delivery is delivered, finally failed or withdrawn, and the metadata stays for the
deliveries log. Existing rows are brought to that rule: finished ones lose their payload, and
the queued content events of sessions deleted since are withdrawn (failed, never sent).
An index on session_id lets a session's deletion find its queued events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.alter_column("payload", existing_type=sa.Text(), nullable=True)
        batch_op.create_index("ix_webhook_delivery_session", ["session_id"], unique=False)
    # The event types as they were at this revision (session.deleted carries no content).
    op.execute(
        sa.text(
            "UPDATE webhook_delivery SET status = 'failed' "
            "WHERE status = 'pending' "
            "AND event_type IN ('session.created', 'session.updated') "
            "AND NOT EXISTS (SELECT 1 FROM release_session "
            "WHERE release_session.id = webhook_delivery.session_id "
            "AND release_session.deleted_at IS NULL)"
        )
    )
    op.execute(sa.text("UPDATE webhook_delivery SET payload = NULL WHERE status <> 'pending'"))


def downgrade() -> None:
    # The older schema requires a payload: a cleared one comes back empty (never sent again:
    # only pending deliveries are sent, and those kept theirs).
    op.execute(sa.text("UPDATE webhook_delivery SET payload = '' WHERE payload IS NULL"))
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_delivery_session")
        batch_op.alter_column("payload", existing_type=sa.Text(), nullable=False)
