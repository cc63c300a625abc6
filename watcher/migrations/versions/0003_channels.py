"""channels: channel-neutral alerts, one delivery per (alert, channel), disabled channels

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00

- `alerts` holds what is said once (event, digest or notice, its routing facts); channels render
  it when they deliver it.
- `outbox` rows become deliveries: `alert_id`, `channel`, `state` (pending|sent|dead), `dead_at`.
  Their rendered subject, bodies and recipients become optional (set when sent); rows from before
  keep theirs and are delivered as they were rendered, to the "watchlist" channel.
- Each existing outbox row gets an alert with the same id (purpose, target and poll move there, so
  "was this outage announced" still reads right across the upgrade).
- `channel_states` remembers a channel whose receiver answered 410 Gone.
"""

from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("poll_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=True),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("routing", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["target_id"], ["targets.id"], name="fk_alerts_target"),
        sa.ForeignKeyConstraint(["poll_id"], ["polls.id"], name="fk_alerts_poll"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name="fk_alerts_event"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alerts_poll", "alerts", ["poll_id"], unique=False)
    op.create_table(
        "channel_states",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    # Every existing row gets an alert with its own id, then points to it.
    op.execute(
        "INSERT INTO alerts (id, purpose, target_id, poll_id, severity, title, created_at) "
        "SELECT id, purpose, target_id, poll_id, "
        "CASE WHEN purpose IN ('failing', 'retired') OR subject LIKE '%[high]%' THEN 'high' ELSE 'low' END, "
        "subject, created_at FROM outbox"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('alerts', 'id'), COALESCE((SELECT max(id) FROM alerts), 0) + 1, "
                   "false)")

    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("alert_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("channel", sa.String(length=100), nullable=False, server_default="watchlist"))
        batch.add_column(sa.Column("state", sa.String(length=10), nullable=False, server_default="pending"))
        batch.add_column(sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key("fk_outbox_alert", "alerts", ["alert_id"], ["id"])
        for column, type_ in (("purpose", sa.String(length=20)), ("recipients", sa.JSON()),
                              ("subject", sa.String(length=1000)), ("text_body", sa.Text()),
                              ("html_body", sa.Text())):
            batch.alter_column(column, existing_type=type_, nullable=True)
        batch.drop_index("ix_outbox_pending")
        batch.create_index("ix_outbox_due", ["state", "next_attempt_at"], unique=False)
    op.execute("UPDATE outbox SET alert_id = id, state = CASE WHEN sent_at IS NULL THEN 'pending' ELSE 'sent' END")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("poll_id")
        batch.drop_column("target_id")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("target_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("poll_id", sa.Integer(), nullable=True))
    op.execute("UPDATE outbox SET target_id = (SELECT target_id FROM alerts WHERE alerts.id = outbox.alert_id), "
               "poll_id = (SELECT poll_id FROM alerts WHERE alerts.id = outbox.alert_id), "
               "purpose = COALESCE(purpose, (SELECT purpose FROM alerts WHERE alerts.id = outbox.alert_id)), "
               "subject = COALESCE(subject, (SELECT title FROM alerts WHERE alerts.id = outbox.alert_id)), "
               "recipients = COALESCE(recipients, '[]'), text_body = COALESCE(text_body, ''), "
               "html_body = COALESCE(html_body, '')")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_due")
        batch.create_index("ix_outbox_pending", ["sent_at", "next_attempt_at"], unique=False)
        batch.drop_constraint("fk_outbox_alert", type_="foreignkey")
        batch.drop_column("dead_at")
        batch.drop_column("state")
        batch.drop_column("channel")
        batch.drop_column("alert_id")
        batch.create_foreign_key("fk_outbox_target", "targets", ["target_id"], ["id"])
        batch.create_foreign_key("fk_outbox_poll", "polls", ["poll_id"], ["id"])
    op.drop_table("channel_states")
    op.drop_index("ix_alerts_poll", table_name="alerts")
    op.drop_table("alerts")
