"""Alembic environment: migrations run in-process on the connection store.migrate() passes."""

from alembic import context

from watcher.record.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
