"""platform state: what the platform itself set on an object (a spend limit enforcing, an automation the
service paused), kept beside its versions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 00:30:00

`resources.state` holds the object's state fields as they were last listed ({path: value}; null when its
kind has none). A change there is never a new version nor a drift event: it is this column, and a
`state` notice when it moves.
"""

from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("state", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("state")
