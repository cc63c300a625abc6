"""web UI, API and metrics: indexes for their questions, and every event's severity recorded

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:00:00

- `ix_polls_status (target_id, kind, status, id)`: the last complete poll of a target and kind
  (/healthz, /metrics, the overview) is an index probe, not a walk through every poll since.
- `events.severity` is filled on rows older than the kind registry (it was decided when read), so
  the events page and /metrics filter and count by it in SQL. The verdict is the registry's, the
  same one `documents.event_severity` gave those rows when they were read.
"""

from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("polls") as batch:
        batch.create_index("ix_polls_status", ["target_id", "kind", "status", "id"], unique=False)
    _fill_severity(op.get_bind())


def _fill_severity(connection) -> None:
    from watcher import kinds

    events = sa.table("events", sa.column("id"), sa.column("resource_id"), sa.column("change"),
                      sa.column("paths", sa.JSON()), sa.column("severity"))
    resources = sa.table("resources", sa.column("id"), sa.column("kind"))
    query = (sa.select(events.c.id, events.c.change, events.c.paths, resources.c.kind)
             .join(resources, resources.c.id == events.c.resource_id).where(events.c.severity.is_(None))
             .order_by(events.c.id).limit(_BATCH))
    after = 0
    while True:
        rows = connection.execute(query.where(events.c.id > after)).all()
        if not rows:
            return
        updates = [{"event_id": event_id, "level": _severity(kinds, kind, change, paths)}
                   for event_id, change, paths, kind in rows]
        connection.execute(events.update().where(events.c.id == sa.bindparam("event_id"))
                           .values(severity=sa.bindparam("level")), updates)
        after = rows[-1][0]


def _severity(kinds, kind: str, change: str, paths) -> str:
    try:
        return kinds.get(kind).severity(change, paths or [])
    except KeyError:  # a kind this version no longer knows: a change we cannot judge is not harmless
        return "high"


def downgrade() -> None:
    with op.batch_alter_table("polls") as batch:
        batch.drop_index("ix_polls_status")
