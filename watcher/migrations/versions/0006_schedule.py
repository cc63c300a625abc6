"""schedule: one row per (target, kind), its next due time and the lease of the process polling it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 14:00:00

Several daemons on one database share the polls through this table: a process claims a due
row by setting `lease_owner` (host:pid:random) and `lease_expires_at`, polls, then moves
`next_due_at` on and clears the lease. A process that dies leaves a lease that expires.
Rows are keyed by the target's configured name, so they exist before its first poll.
"""

from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule",
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("target", "kind"),
    )
    op.create_index("ix_schedule_due", "schedule", ["next_due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_schedule_due", table_name="schedule")
    op.drop_table("schedule")
