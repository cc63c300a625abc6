"""The record: SQLAlchemy 2 models, the engine, and migrations on open.

SQLite (a file, WAL mode, created 0600) is the embedded default; PostgreSQL is
the production and multi-instance store. Everything here is portable SQLAlchemy;
the dialect-specific pieces are the locks (`watcher.locks`) and the outbox claim,
each behind small functions.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy.engine import CursorResult, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.sql.dml import Update

from watcher.config.values import MAX_CONCURRENT_POLLS, pool_size
from watcher.errors import ConfigError
from watcher.locks import lock_key
from watcher.sql import SCHEMA_HEAD
from watcher.times import utcnow

log = logging.getLogger("watcher.store")
from watcher.compare.normalize import ID_LIMIT, NAME_LIMIT

KIND_LIMIT = 40  # characters of a kind's config name (resources.kind, polls.kind)


def rows_updated(session: Session, statement: Update) -> int:
    """Run an UPDATE without touching the session's loaded objects; how many rows it changed.

    The count is what compare-and-set and claims decide on: 0 means another process got there first.
    """
    result = session.execute(statement.execution_options(synchronize_session=False))
    return cast(CursorResult, result).rowcount


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on every dialect."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the record")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Target(Base):
    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    base_url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Resource(Base):
    __tablename__ = "resources"
    __table_args__ = (
        UniqueConstraint("target_id", "kind", "remote_id"),
        Index("ix_resources_name", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"))
    kind: Mapped[str] = mapped_column(String(KIND_LIMIT))
    remote_id: Mapped[str] = mapped_column(String(ID_LIMIT))
    name: Mapped[str | None] = mapped_column(String(NAME_LIMIT))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    current_version: Mapped[int] = mapped_column(Integer)
    current_hash: Mapped[str] = mapped_column(String(64))
    # The raw JSON last listed, with the rules that normalized it: equal next time means unchanged.
    raw_hash: Mapped[str | None] = mapped_column(String(32))

    target: Mapped[Target] = relationship()


class Version(Base):
    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("resource_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"))
    number: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    remote_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    origin: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)

    def parsed(self) -> dict[str, Any]:
        return json.loads(self.body)


class Poll(Base):
    __tablename__ = "polls"
    __table_args__ = (Index("ix_polls_target_kind", "target_id", "kind", "id"),
                      Index("ix_polls_status", "target_id", "kind", "status", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id"))
    kind: Mapped[str] = mapped_column(String(KIND_LIMIT))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # complete | failed | not_served
    status: Mapped[str] = mapped_column(String(20))
    objects: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    changes: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # The ignore rules a complete poll applied: the next one tells a rule change from drift by them.
    ignore: Mapped[list[str] | None] = mapped_column(JSON)
    # A fingerprint of the target settings it ran with: "not served here" holds until they change.
    settings: Mapped[str | None] = mapped_column(String(64))
    # The process that polled (host:pid), for operators of several daemons on one database.
    worker: Mapped[str | None] = mapped_column(String(200))

    target: Mapped[Target] = relationship()


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_detected", "detected_at"), Index("ix_events_resource", "resource_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"))
    poll_id: Mapped[int | None] = mapped_column(ForeignKey("polls.id"))
    # created | modified | deleted | reappeared
    change: Mapped[str] = mapped_column(String(20))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    paths: Mapped[list[str]] = mapped_column(JSON)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    remote_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acked_by: Mapped[str | None] = mapped_column(String(200))
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)
    # high | low, decided when recorded (NULL on rows older than the kind registry: decided when read).
    severity: Mapped[str | None] = mapped_column(String(10))
    # Who made the change, when a source knows: {"type", "id", "email", "ip", "source", "audit_event_id"}.
    actor: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    resource: Mapped[Resource] = relationship()


class Alert(Base):
    """Something to tell people, channel-neutral and stored once: a drift event, a digest of a
    poll's events, or a notice (failing, recovered, retired, dead, disabled).

    Channels render it when they deliver it, from this row and the record it points to.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_poll", "poll_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # event | digest | failing | recovered | retired | dead | disabled | test
    purpose: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id"))
    # The poll that queued it: whether an outage was announced is read from here, not inferred.
    poll_id: Mapped[int | None] = mapped_column(ForeignKey("polls.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    kind: Mapped[str | None] = mapped_column(String(KIND_LIMIT))
    severity: Mapped[str] = mapped_column(String(10), default="low")
    # The headline (an email's default subject), for `outbox` and the log.
    title: Mapped[str] = mapped_column(String(1000))
    # What a notice says ({error, failures, since, ...}); a digest's {"event_ids": [...]}.
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What routes match on, one {name, kind, target, severity} per object: email recipients are
    # resolved from these when the alert is sent, so a fixed watchlist helps mail already queued.
    routing: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="alert", cascade="all, delete-orphan")
    target: Mapped[Target | None] = relationship()


class Delivery(Base):
    """One alert on its way to one channel (the outbox): pending until accepted, then sent; or dead."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    # The channel's name in the config ("watchlist" for the [alerts] watchlist email).
    channel: Mapped[str] = mapped_column(String(100), default="watchlist")
    # pending | sent | dead
    state: Mapped[str] = mapped_column(String(10), default="pending")
    purpose: Mapped[str | None] = mapped_column(String(20))
    # The delivery's stable id, the same on every retry: the email's Message-ID, a webhook's webhook-id.
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    # Set when sent (what it went to and said); pre-rendered rows (from before channels) carry them from the start.
    recipients: Mapped[list[str] | None] = mapped_column(JSON)
    subject: Mapped[str | None] = mapped_column(String(1000))
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    refused: Mapped[list[str] | None] = mapped_column(JSON)

    alert: Mapped[Alert | None] = relationship(back_populates="deliveries")


OutboxMessage = Delivery  # the name it had when the outbox held only emails


class ChannelState(Base):
    """A channel its receiver told to go away (HTTP 410): nothing is sent to it until its URL
    changes (the fingerprint differs) or `outbox --retry-now` enables it again."""

    __tablename__ = "channel_states"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    disabled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)
    # HMAC of the URL it was disabled for, with the installation key: never the URL itself (a secret).
    destination: Mapped[str] = mapped_column(String(64))


class ScheduleEntry(Base):
    """When (target, kind) is next due, and which process holds it while polling (see watcher.schedule)."""

    __tablename__ = "schedule"
    __table_args__ = (Index("ix_schedule_due", "next_due_at"),)

    target: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(KIND_LIMIT), primary_key=True)
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # host:pid:random of the process polling it; NULL when nobody is.
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Meta(Base):
    """Installation-wide values (the key that fingerprints redacted secrets)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# --- opening the store ----------------------------------------------------------------

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
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
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


# --- small shared queries ---------------------------------------------------------------


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
