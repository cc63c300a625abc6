"""The outbox: one delivery per (alert, channel), sent until its receiver accepts it.

A delivery is `pending` until a receiver accepts it (an SMTP server takes the message, a
webhook answers 2xx): then `sent`. It is `dead` when retrying cannot help (every recipient
refused with a 5xx, the receiver answered 410 Gone) or when it still fails `[alerts]
give_up_after` after it was queued; the other channels then get a `delivery.dead` notice (a
410 disables the channel and sends a `channel.disabled` notice instead). Other failures keep
the error and back off: 1 minute, doubling, at most 1 hour.

`deliver_pending` claims due deliveries one at a time (an UPDATE guarded by `claimed_until`;
on PostgreSQL after `SELECT … FOR UPDATE SKIP LOCKED`), so processes sharing a database never
send one twice; a delivery is marked sent only after its receiver accepted it. A process
killed between the two sends it again when its claim expires: at least once, never lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from watcher.alerts import compose, stored
from watcher.alerts.channels import dispatch
from watcher.alerts.channels.base import Claimed, Payload, Sent, Sweep
from watcher.alerts.channels.base import recipients as email_recipients
from watcher.config.model import Config
from watcher.display import counted
from watcher.errors import ConfigError, DeliveryError, one_line
from watcher.record.engine import installation_key
from watcher.record.models import Alert, ChannelState, Delivery, rows_updated
from watcher.record.overview_orm import count_pending
from watcher.record.schema import DeliveryState, Purpose
from watcher.times import duration_text, iso, utcnow

log = logging.getLogger("watcher.outbox")

BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
DEFAULT_LEASE = timedelta(minutes=2)  # for a delivery whose channel is no longer configured
_SENT_SHOWN = 50


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: 1 minute, doubling, at most 1 hour."""
    return min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


@dataclass
class DeliveryReport:
    """What one sweep of the outbox did."""

    sent: int = 0
    failed: int = 0
    dead: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)
    dead_errors: list[str] = field(default_factory=list)
    email_only: bool = True  # every delivery attempted was an email (the summary then speaks of mail)

    def summary(self) -> str | None:
        """One line for the CLI and the daemon's log; None when nothing was attempted."""
        if not (self.sent or self.failed or self.dead):
            return None
        noun, unit, plural = ("mail", "email", "emails") if self.email_only else ("alerts", "delivery", "deliveries")
        parts = [f"{counted(self.sent, unit, plural)} sent"] if self.sent else []
        if self.failed:
            parts.append(f"{self.failed} not delivered, will retry ({self.errors[0]})" if self.errors
                         else f"{self.failed} not delivered, will retry")
        if self.dead:
            reason = f" ({self.dead_errors[0]})" if self.dead_errors else ""
            parts.append(f"{self.dead} given up{reason}")
        if self.pending:
            parts.append(f"{self.pending} waiting in the outbox")
        return f"{noun}: " + "; ".join(parts)

    def error(self, text: str, *, dead: bool = False) -> None:
        errors = self.dead_errors if dead else self.errors
        if text not in errors:  # an outage fails every delivery the same way: say it once
            errors.append(text)


def deliver_pending(engine: Engine, config: Config, *, now: datetime | None = None) -> DeliveryReport:
    """Send every due delivery through its channel; safe while other processes deliver too.

    `now` fixes the clock (tests move it past a backoff or a claim). Raises only for a
    database error.
    """
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    report = DeliveryReport()
    asyncio.run(_Sweeper(engine, config, clock, report).run())
    report.pending = count_pending(engine)
    return report


class _Sweeper:
    """One pass over the due deliveries."""

    def __init__(self, engine: Engine, config: Config, clock: Callable[[], datetime], report: DeliveryReport):
        self.engine, self.config, self.clock, self.report = engine, config, clock, report
        self.sweep = Sweep(config)
        self.give_up_after = timedelta(seconds=config.alerts.give_up_after)
        self.dying: list[tuple[Claimed, str]] = []  # failed for good; marked dead, with their notices, at the end

    async def run(self) -> None:
        held = disabled_channels(self.engine, self.config)
        self._expire_held(held)
        try:
            while True:
                while (row := _claim_next(self.engine, self.clock(), held, self._lease)) is not None:
                    if await self._deliver(row) == "gone" or row.channel in self.sweep.broken:
                        held.add(row.channel)  # its other deliveries are not claimed, so no untried one counts a try
                if not self._bury():  # a dead-delivery notice goes out in this same sweep
                    break
        finally:
            await self.sweep.close()
            self._bury()

    def _lease(self, name: str) -> timedelta:
        channel = dispatch.open_channel(name, self.config, self.sweep)
        return channel.lease if channel is not None else DEFAULT_LEASE

    async def _deliver(self, row: Claimed) -> str:
        channel = dispatch.open_channel(row.channel, self.config, self.sweep)
        if channel is None:
            return self._failed(row, f"channel {row.channel} is not configured any more")
        self.report.email_only &= channel.type == "email"
        try:
            with Session(self.engine) as session:
                alert = stored.load(session, row.alert_id)
            payload = channel.render(alert, row)
            sent = await channel.send(payload, row)
        except DeliveryError as exc:
            if exc.gone:
                return self._gone(row, str(exc))
            if exc.permanent:
                return self._dead(row, str(exc))
            return self._failed(row, str(exc))
        except ConfigError as exc:  # a channel secret went missing: the operator fixes it, we retry
            return self._failed(row, str(exc))
        except Exception as exc:  # a bug in rendering must cost one delivery a retry, not the sweep
            log.exception("delivery %d to %s failed unexpectedly", row.id, row.channel)
            return self._failed(row, f"could not deliver: {type(exc).__name__}: {one_line(exc, 300)}")
        _mark_sent(self.engine, row, payload, sent, self.clock())
        self.report.sent += 1
        return "sent"

    def _failed(self, row: Claimed, error: str) -> str:
        at = self.clock()
        if at - row.created_at >= self.give_up_after:
            return self._dead(row, error)
        _mark_failed(self.engine, row, error, at)
        self.report.failed += 1
        self.report.error(error if self.report.email_only else f"{row.channel}: {error}")
        return "failed"

    def _dead(self, row: Claimed, error: str) -> str:
        self.dying.append((row, error))
        self.report.dead += 1
        self.report.error(f"{row.channel}: {error}", dead=True)
        log.warning("delivery %d to %s is dead: %s", row.id, row.channel, error)
        return "dead"

    def _gone(self, row: Claimed, error: str) -> str:
        """410: the delivery is dead, the channel disabled, and the other channels are told, at once."""
        at = self.clock()
        destination = _fingerprint(self.engine, self.config, row.channel) or ""  # its own transaction: first
        with Session(self.engine) as session, session.begin():
            _set_dead(session, row, error, at)
            session.merge(ChannelState(name=row.channel, disabled_at=at, reason=error, destination=destination))
            told = _told_disabled(session, row.channel)
            if told is None:
                compose.queue_notice(session, self.config, Purpose.DISABLED, {"channel": row.channel, "reason": error},
                                     exclude=row.channel)
        if told is None:
            log.error("channel %s disabled: %s", row.channel, error)
        else:
            log.error("channel %s disabled again: %s (the other channels were told at %s, and it has taken "
                      "nothing since)", row.channel, error, iso(told))
        self.report.dead += 1
        self.report.error(f"{row.channel}: {error}; channel disabled", dead=True)
        return "gone"

    def _bury(self) -> bool:
        """Mark the dying deliveries dead and tell the other channels, one notice per channel, in one
        transaction (a crash before it leaves them pending: they die at their next attempt). True when
        a notice was queued."""
        if not self.dying:
            return False
        at = self.clock()
        by_channel: dict[str, list[dict]] = {}
        with Session(self.engine) as session, session.begin():
            for row, error in self.dying:
                _set_dead(session, row, error, at)
                if row.purpose != Purpose.DEAD:  # a notice that a notice died would chase itself around the channels
                    by_channel.setdefault(row.channel, []).append(_dead_entry(session, row, error))
            queued = [compose.queue_notice(session, self.config, Purpose.DEAD, {
                "channel": name, "deliveries": entries,
                "give_up_after": duration_text(self.config.alerts.give_up_after)}, exclude=name)
                for name, entries in by_channel.items()]
        self.dying = []
        return any(queued)

    def _expire_held(self, held: set[str]) -> None:
        """Deliveries waiting on a disabled channel die quietly at give_up_after (its notice said why)."""
        if not held:
            return
        at = self.clock()
        with Session(self.engine) as session, session.begin():
            session.execute(update(Delivery).where(
                Delivery.state == DeliveryState.PENDING, Delivery.channel.in_(held),
                Delivery.created_at <= at - self.give_up_after,
            ).values(state=DeliveryState.DEAD, dead_at=at,
                     last_error="channel disabled (410 Gone) until it was given up")
                .execution_options(synchronize_session=False))


def _told_disabled(session: Session, channel: str) -> datetime | None:
    """When the other channels were last told `channel` is disabled, if it has delivered nothing since:
    a receiver still answering 410 after `outbox --retry-now` is disabled again without telling them again."""
    notices = session.execute(select(Alert.created_at, Alert.detail).where(Alert.purpose == Purpose.DISABLED)
                              .order_by(Alert.id.desc()).limit(_NOTICES_SCANNED))
    told = next((created for created, detail in notices if (detail or {}).get("channel") == channel), None)
    if told is None:
        return None
    sent_since = session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.channel == channel, Delivery.state == DeliveryState.SENT, Delivery.sent_at >= told))
    return None if sent_since else told


_NOTICES_SCANNED = 100  # the newest disabled notices looked through (one per 410, of any channel)


def _dead_entry(session: Session, row: Claimed, error: str) -> dict:
    title = session.scalar(select(Alert.title).where(Alert.id == row.alert_id)) if row.alert_id else row.subject
    return {"id": row.id, "title": title or "", "created_at": iso(row.created_at), "attempts": row.attempts + 1,
            "last_error": error}


# --- claims and marks ---------------------------------------------------------------------------


def _due(at: datetime):
    return (Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= at,
            or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < at))


def _claim_next(engine: Engine, at: datetime, held: set[str], lease: Callable[[str], timedelta]) -> Claimed | None:
    """Claim the oldest due delivery for this process, or None when none is left.

    SQLite serializes writers (BEGIN IMMEDIATE) and PostgreSQL skips rows another
    transaction holds; the guarded UPDATE makes a claim exclusive on either.
    """
    skip = (Delivery.channel.not_in(held),) if held else ()
    while True:
        with Session(engine) as session, session.begin():
            row = session.scalar(select(Delivery).where(*_due(at), *skip).order_by(Delivery.id).limit(1)
                                 .with_for_update(skip_locked=True))
            if row is None:
                return None
            claimed = rows_updated(session, update(Delivery).where(Delivery.id == row.id, *_due(at))
                                   .values(claimed_until=at + lease(row.channel)))
            if claimed == 1:
                return Claimed(row.id, row.channel, row.message_id, row.created_at, row.attempts, row.alert_id,
                               row.purpose, list(row.recipients) if row.recipients is not None else None, row.subject,
                               row.text_body, row.html_body)


def _mark_sent(engine: Engine, row: Claimed, payload: Payload, sent: Sent, at: datetime) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(Delivery).where(Delivery.id == row.id).values(
            state=DeliveryState.SENT, sent_at=at, attempts=row.attempts + 1, claimed_until=None, last_error=None,
            refused=sent.refused or None, recipients=payload.recipients, subject=payload.subject,
        ).execution_options(synchronize_session=False))
    if sent.refused:
        log.warning("outbox %d sent, but the server refused %s", row.id, "; ".join(sent.refused))


def _mark_failed(engine: Engine, row: Claimed, error: str, at: datetime) -> None:
    attempts = row.attempts + 1
    with Session(engine) as session, session.begin():
        session.execute(update(Delivery).where(Delivery.id == row.id).values(
            attempts=attempts, last_error=error, next_attempt_at=at + backoff(attempts), claimed_until=None,
        ).execution_options(synchronize_session=False))


def _set_dead(session: Session, row: Claimed, error: str, at: datetime) -> None:
    session.execute(update(Delivery).where(Delivery.id == row.id).values(
        state=DeliveryState.DEAD, dead_at=at, attempts=row.attempts + 1, last_error=error, claimed_until=None,
    ).execution_options(synchronize_session=False))


# --- disabled channels ----------------------------------------------------------------------------


def _fingerprint(engine: Engine, config: Config, name: str) -> str | None:
    """An HMAC of the channel's URL (never the URL: it may be a secret), or None when it cannot be read."""
    settings = config.channel(name)
    if settings is None or settings.type == "email":
        return None
    try:
        url = settings.destination()
    except ConfigError:
        return None
    return hmac.new(installation_key(engine), url.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def disabled_channels(engine: Engine, config: Config) -> set[str]:
    """The channels disabled for the URL they have now; one whose URL changed is enabled again."""
    with Session(engine) as session:
        states = list(session.scalars(select(ChannelState)))
    held = set()
    for state in states:
        now = _fingerprint(engine, config, state.name)
        if now is not None and state.destination and now != state.destination:
            with Session(engine) as session, session.begin():
                _enable(session, state, utcnow())
            log.info("channel %s has a new URL: enabled again", state.name)
            continue
        held.add(state.name)
    return held


# --- steering and reading the outbox ---------------------------------------------------------------


def retry_now(engine: Engine, *, now: datetime | None = None) -> tuple[int, list[str]]:
    """Make every pending delivery due now and enable every disabled channel again (an outage was
    fixed): how many deliveries were waiting, and the channels enabled again."""
    at = now or utcnow()
    with Session(engine) as session, session.begin():
        waiting = rows_updated(session, update(Delivery)
                               .where(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at > at)
                               .values(next_attempt_at=at))
        enabled = list(session.scalars(select(ChannelState).order_by(ChannelState.name)))
        for state in enabled:
            _enable(session, state, at)
    return waiting, [state.name for state in enabled]


def _enable(session: Session, state: ChannelState, at: datetime) -> None:
    """Enable a disabled channel again, and send again the delivery its receiver answered 410 to: it died
    with the channel (the same instant), not because anyone gave up on it."""
    session.execute(update(Delivery).where(Delivery.channel == state.name, Delivery.state == DeliveryState.DEAD,
                                           Delivery.dead_at == state.disabled_at)
                    .values(state=DeliveryState.PENDING, dead_at=None, next_attempt_at=at)
                    .execution_options(synchronize_session=False))
    session.execute(delete(ChannelState).where(ChannelState.name == state.name))


def rows(session: Session, limit: int = _SENT_SHOWN) -> list[Delivery]:
    """Every pending delivery (oldest first), then the `limit` most recently sent or dead."""
    pending = session.scalars(select(Delivery).where(Delivery.state == DeliveryState.PENDING).order_by(Delivery.id))
    finished_at = func.coalesce(Delivery.sent_at, Delivery.dead_at)
    done = session.scalars(select(Delivery).where(Delivery.state != DeliveryState.PENDING)
                           .order_by(finished_at.desc(), Delivery.id.desc()).limit(limit))
    return [*pending, *done]


def preview(row: Delivery, config: Config) -> dict:
    """What a pending delivery would carry if sent now: its alert's title, and on an email channel
    the recipients the config gives it today (a sent one shows what it carried)."""
    alert = row.alert
    if row.recipients is not None or alert is None:
        return {"subject": alert.title if alert else None, "recipients": None}
    is_email = dispatch.type_names(config).get(row.channel) == "email"
    to = email_recipients(config, row.channel, alert.routing or []) if is_email else []
    return {"subject": alert.title, "recipients": to}


def held_channels(session: Session) -> set[str]:
    """The channels disabled by a 410 (their deliveries wait)."""
    return set(session.scalars(select(ChannelState.name)))
