"""Opening the record: the engine (SQLite a file, WAL mode, created 0600; PostgreSQL the production and
multi-instance store), migrations on open, and the two rows every process may create first.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from watcher.config.values import MAX_CONCURRENT_POLLS, pool_size
from watcher.errors import ConfigError
from watcher.record.locks import lock_key
from watcher.record.models import Meta, Target
from watcher.record.schema import SCHEMA_HEAD
from watcher.times import utcnow

log = logging.getLogger("watcher.store")

MIGRATIONS = Path(__file__).parent.parent / "migrations"  # Alembic's script directory


# The pool fits the default number of polls at once ([database] max_connections sizes it otherwise).
POOL_SIZE = pool_size(MAX_CONCURRENT_POLLS)


def open_engine(url: str, *, max_connections: int | None = None) -> Engine:
    """An engine on `url`, the database created (SQLite: 0600, WAL) and migrated to head.

    On PostgreSQL the engine never holds more than `max_connections` (default: a pool of
    POOL_SIZE that may overflow by five).
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"database.url: cannot parse {_redact(url)!r}") from None
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed)
    else:
        try:
            sizes = {"pool_size": max_connections, "max_overflow": 0} if max_connections else \
                {"pool_size": POOL_SIZE, "max_overflow": 5}
            engine = create_engine(parsed, pool_pre_ping=True, **sizes)
        except Exception as exc:
            raise ConfigError(f"database.url: {type(exc).__name__}: {exc}") from None
    migrate(engine)
    return engine


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


def _sqlite_engine(url) -> Engine:
    database = url.database
    if database and database != ":memory:":
        path = Path(database).expanduser()
        if not path.parent.is_dir():
            raise ConfigError(f"database.url: directory {path.parent} does not exist")
        # Created 0600 before SQLite touches it: the record holds instructions and prompts.
        try:
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        except OSError as exc:
            raise ConfigError(f"database.url: cannot open {path}: {exc.strerror}") from None
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" below decide when a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking;
        # a reader (web pages, metrics) takes none, so it never waits behind a poll's transaction.
        reading = connection.get_execution_options().get(_READ_ONLY)
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine


_READ_ONLY = "watcher_read_only"


def reader(engine: Engine) -> Engine:
    """`engine` for sessions that only read: on SQLite they take no write lock (WAL readers never block)."""
    return engine.execution_options(**{_READ_ONLY: True})


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent; no Alembic when already there)."""
    if _schema_version(engine) == SCHEMA_HEAD:
        log.debug("database schema is current (%s)", SCHEMA_HEAD)
        return
    log.debug("database schema is behind %s: migrating", SCHEMA_HEAD)
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Two processes starting at once must not both create the tables.
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("migrate")})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def _schema_version(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # no table yet (a new database), or unreadable: Alembic decides
        return None


def ensure_target(session: Session, name: str, base_url: str) -> Target:
    """The target row called `name`, created on first use."""
    target = session.scalar(select(Target).where(Target.name == name))
    if target is None:
        try:
            with session.begin_nested():  # two processes may create it at once: the loser reads the winner's
                target = Target(name=name, base_url=base_url, created_at=utcnow())
                session.add(target)
        except IntegrityError:  # the winner's row is there: one() says so if it is not
            target = session.scalars(select(Target).where(Target.name == name)).one()
    if target.base_url != base_url:
        target.base_url = base_url
    return target


INSTALLATION_KEY = "installation_key"


def installation_key(engine: Engine) -> bytes:
    """The installation's secret key (32 random bytes, created once): redacted values are fingerprinted with it."""
    with Session(engine) as session, session.begin():
        value = session.get(Meta, INSTALLATION_KEY)
        if value is None:
            try:
                with session.begin_nested():  # another process may create it at the same moment
                    session.add(Meta(key=INSTALLATION_KEY, value=os.urandom(32).hex()))
            except IntegrityError:
                pass
            value = session.get(Meta, INSTALLATION_KEY)
        if value is None:  # ours was added, or the other process's made ours fail: one of them is there
            raise RuntimeError("the installation key was neither found nor created")
        return bytes.fromhex(value.value)
