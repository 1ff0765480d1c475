"""grant.ended: a webhook delivery that outlives the grant and the client's account

`webhook_delivery.client_id` stops being a foreign key to `user_account`: a `grant.ended`
delivery must survive the erasure of the client it is about (it keeps only their bare id), so
deleting an account no longer cascades to the deliveries about them; the erasure deletes the
others itself. An index on client_id serves that deletion. `session_id` becomes nullable:
`grant.ended` is about no session.

Existing subscriptions are left as they are: a webhook receives `grant.ended` (and
`session.flagged`) only when it lists them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLIENT_FK = "fk_webhook_delivery_client_id_user_account"
# The event types this revision introduces, unknown to the code of the one before.
NEW_EVENTS = ("session.flagged", "grant.ended")


def upgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_constraint(CLIENT_FK, type_="foreignkey")
        batch_op.alter_column("session_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.create_index("ix_webhook_delivery_client", ["client_id"], unique=False)


def downgrade() -> None:
    # The older schema has no place for them: grant.ended deliveries (no session) and those
    # about accounts erased since (the foreign key comes back) are deleted, and webhooks stop
    # listing the event types the older code does not know (one left with none receives nothing).
    op.execute(sa.text("DELETE FROM webhook_delivery WHERE event_type = 'grant.ended'"))
    op.execute(
        sa.text(
            "DELETE FROM webhook_delivery WHERE NOT EXISTS "
            "(SELECT 1 FROM user_account WHERE user_account.id = webhook_delivery.client_id)"
        )
    )
    connection = op.get_bind()
    webhook = sa.table("webhook", sa.column("id", sa.Uuid()), sa.column("events", sa.String()))
    for webhook_id, events in connection.execute(sa.select(webhook.c.id, webhook.c.events)):
        kept = " ".join(event for event in events.split() if event not in NEW_EVENTS)
        if kept != events:
            connection.execute(
                sa.update(webhook).where(webhook.c.id == webhook_id).values(events=kept)
            )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_delivery_client")
        batch_op.alter_column("session_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.create_foreign_key(
            CLIENT_FK, "user_account", ["client_id"], ["id"], ondelete="CASCADE"
        )
