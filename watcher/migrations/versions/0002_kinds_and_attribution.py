"""kinds registry: wider kind names, the installation key, severity and actor on events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:30:00

- `resources.kind` and `polls.kind` grow from 20 to 40 characters ("project_service_accounts").
- `meta` holds installation-wide values, such as the key that fingerprints redacted secrets.
- `events.severity` is decided when the event is recorded (older rows: NULL, decided when read);
  `events.actor` says who made the change when a source knows (the organization audit log).
- `polls.settings` fingerprints the target settings a poll ran with (a kind "not served here"
  is asked again only when they change); `polls.worker` names the process that polled.
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=20), type_=sa.String(length=40),
                           existing_nullable=False)
    with op.batch_alter_table("polls") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=20), type_=sa.String(length=40),
                           existing_nullable=False)
        batch.add_column(sa.Column("settings", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("severity", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("actor", sa.JSON(), nullable=True))
        batch.create_index("ix_events_resource", ["resource_id", "id"], unique=False)
    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("meta")
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_resource")
        batch.drop_column("actor")
        batch.drop_column("severity")
    with op.batch_alter_table("polls") as batch:
        batch.drop_column("worker")
        batch.drop_column("settings")
        batch.alter_column("kind", existing_type=sa.String(length=40), type_=sa.String(length=20),
                           existing_nullable=False)
    with op.batch_alter_table("resources") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=40), type_=sa.String(length=20),
                           existing_nullable=False)
