"""a fingerprint of each object as last listed, so an unchanged object is not normalized again

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 11:00:00

`resources.raw_hash` fingerprints the raw JSON an object was last listed with, together with the
rules it was normalized by. A poll that lists the same bytes under the same rules knows the content
is unchanged without normalizing it again. NULL (older rows) means "normalize it".
"""

from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("raw_hash", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("raw_hash")
