"""The record read in plain SQL: one connection over sqlite3 or psycopg, no SQLAlchemy, no Alembic.

Reading commands open the record here so that they start as fast as a bare SQLite client would.
The schema version is read from `alembic_version` directly; only a database that is new or behind
is handed to `watcher.record.engine.open_engine`, which creates or migrates it, and then opened here.
Times come back as aware UTC datetimes and JSON columns as Python values, on both databases,
exactly as the SQLAlchemy models give them.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from watcher.config.values import database_parts
from watcher.record.schema import SCHEMA_HEAD

log = logging.getLogger("watcher.store")

# How SQLAlchemy's SQLite dialect stores a DateTime (the models store naive UTC): text that sorts as time.
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


class Database:
    """An open connection for reading the record; `?` marks a parameter on both databases."""

    def __init__(self, connection: Any, dialect: str):
        self._connection = connection
        self.dialect = dialect

    def rows(self, query: str, *params: Any) -> list[tuple]:
        """Every row `query` returns."""
        if self.dialect == "postgresql":
            query = query.replace("?", "%s")
        cursor = self._connection.execute(query, params)
        try:
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, query: str, *params: Any) -> tuple | None:
        """The first row `query` returns, or None."""
        found = self.rows(query, *params)
        return found[0] if found else None

    def scalar(self, query: str, *params: Any) -> Any:
        """The first column of the first row, or None."""
        row = self.first(query, *params)
        return row[0] if row else None

    def time_param(self, moment: datetime) -> Any:
        """`moment` as the database compares it with a stored time."""
        if self.dialect == "sqlite":
            return moment.astimezone(UTC).replace(tzinfo=None).strftime(_SQLITE_TIME)
        return moment.astimezone(UTC)

    def schema(self) -> str | None:
        """The Alembic revision the database is at; None for a database without one (new, or not ours)."""
        try:
            return self.scalar("SELECT version_num FROM alembic_version")
        except Exception:  # no table yet (a new database), or unreadable: the store decides
            return None

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def moment(value: Any) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite keeps naive UTC text, PostgreSQL timestamptz)."""
    return None if value is None else instant(value)


def instant(value: Any) -> datetime:
    """A stored time from a NOT NULL column (or expression) as an aware UTC datetime: see `moment`."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_value(value: Any) -> Any:
    """A stored JSON column as Python values (SQLite keeps text; psycopg has already parsed it)."""
    return json.loads(value) if isinstance(value, str) else value


def open_database(url: str) -> Database:
    """The record at `url`, at the current schema: created or migrated first (by the store) if it is not."""
    _scheme, backend, path, _query = database_parts(url)
    database = _connect(url, backend, path)
    if database is not None:
        if database.schema() == SCHEMA_HEAD:
            log.debug("database schema is current (%s)", SCHEMA_HEAD)
            return database
        database.close()
    from watcher.record.engine import open_engine  # a new or old database: SQLAlchemy and Alembic do that work

    open_engine(url).dispose()
    database = _connect(url, backend, path)
    assert database is not None, "the store creates the database file"
    return database


def _connect(url: str, backend: str, path: str | None) -> Database | None:
    if backend == "sqlite":
        file = os.path.expanduser(path or "")
        if not os.path.isfile(file):
            return None  # the store creates it, 0600, with the schema
        import sqlite3

        # isolation_level None: every read sees the latest commit; timeout: wait out a writer's lock.
        return Database(sqlite3.connect(file, timeout=30, isolation_level=None), "sqlite")
    import psycopg

    scheme, _, rest = url.partition("://")
    return Database(psycopg.connect(f"{scheme.partition('+')[0]}://{rest}", autocommit=True), "postgresql")
