"""The record's schema in plain values, importing nothing: what every reader and writer of the record
agrees on, so that no module has to import the models (or SQLAlchemy) to know it."""

# The newest migration in watcher/migrations/versions (a test keeps it so): a database already
# there needs no Alembic at all, which keeps every command's start fast.
SCHEMA_HEAD = "0006"

KIND_LIMIT = 40  # characters of a kind's config name (resources.kind, polls.kind)

# The note of a version recorded because the watcher's own rules changed, not the object.
RULES_CHANGED = "the watcher's rules changed (ignore, redact or volatile fields): not an edit on the platform"
