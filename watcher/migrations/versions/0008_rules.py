"""rules: an event that a version breaks a rule, or satisfies it again, names the rule and says why

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 01:05:00

`events.change` gains `violation` and `resolved`; `events.rule` is the rule's name ([[rules]] name),
`events.message` what a violation says is wrong (or why the rule could not be evaluated).
"""

from alembic import op
import sqlalchemy as sa


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("rule", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("message")
        batch.drop_column("rule")
