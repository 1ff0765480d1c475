"""session.flagged: when a write left a session with a worse rating

`release_session.flagged_at` is set by the write that leaves a session with a worse rating
when it had none (that write queues `session.flagged`), kept while the session stays worse, and
cleared by a write that leaves it with none. Sessions already worse are backfilled with their
`updated_at`, so that a later write keeping them worse sends no `session.flagged`: the write
that first made them worse happened before this revision.

The catalog's thresholds as of this revision are written here (a migration never imports the
application): worse = improvement <= -mcid_abs, compared in integer tenths.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

import models.base
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = 'CAST(ROUND("rating"."before" * 10) AS INTEGER)'
_AFTER = 'CAST(ROUND("rating"."after" * 10) AS INTEGER)'
BACKFILL = f"""
UPDATE release_session SET flagged_at = updated_at
WHERE deleted_at IS NULL AND EXISTS (
    SELECT 1 FROM rating
    WHERE rating.session_id = release_session.id
      AND "rating"."after" IS NOT NULL
      AND CASE WHEN rating.metric IN ('pain', 'stiffness') THEN {_BEFORE} - {_AFTER}
               ELSE {_AFTER} - {_BEFORE} END
          <= -(CASE rating.metric WHEN 'pain' THEN 20 WHEN 'stiffness' THEN 20
                                  WHEN 'mobility' THEN 20 WHEN 'rom' THEN 50 END)
)
"""


def upgrade() -> None:
    with op.batch_alter_table("release_session", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("flagged_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(sa.text(BACKFILL))


def downgrade() -> None:
    # session.flagged deliveries stay: 0006 knows the event type.
    with op.batch_alter_table("release_session", schema=None) as batch_op:
        batch_op.drop_column("flagged_at")
