"""The record's tables as SQLAlchemy 2 models, and the one column type they share (aware UTC times).

Everything here is portable SQLAlchemy: the dialect-specific pieces are the locks
(`watcher.record.locks`), the engine's set-up (`watcher.record.engine`) and the outbox claim.
The vocabularies stored in string columns (a poll's status, a delivery's state, a version's
origin, an alert's purpose) are `watcher.record.schema`'s enums.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.sql.dml import Update

from watcher.compare.normalize import ID_LIMIT, NAME_LIMIT
from watcher.record.schema import KIND_LIMIT, DeliveryState


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
    # The platform-set fields as last listed ({path: value}), beside the versions: never an edit.
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON)

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
    # violation | resolved: the rule ([[rules]] name) and, for a violation, what it says is wrong.
    rule: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str | None] = mapped_column(Text)

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
    state: Mapped[str] = mapped_column(String(10), default=DeliveryState.PENDING)
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
    """When (target, kind) is next due, and which process holds it while polling (see watcher.run.schedule)."""

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
