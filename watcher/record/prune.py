"""Retention: what `prune --keep-days N` may delete from a long-lived record, and deleting it.

Only history older than the cutoff goes, and never what the record needs to stay true:

- a version goes only if it is not its object's current (last) version and no kept event names it;
- an event goes only if someone acknowledged it (an open event is work left to do) and no kept
  alert names it, as its event or among a digest's;
- an alert goes only once none of its deliveries is pending; sent and dead deliveries go with it;
- a poll goes only if nothing kept points at it and it is not the last poll, nor the last complete
  poll, of its target and kind (the next poll's time window and "not served" memory read those).

`plan` counts, `prune` deletes the same rows in one transaction. No I/O beyond the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from watcher.record.models import Alert, Delivery, Event, Poll, Resource, Version
from watcher.record.schema import DeliveryState, PollStatus, Purpose


@dataclass(frozen=True)
class Pruned:
    """How many rows of each table a prune deletes (or would)."""

    versions: int
    events: int
    alerts: int
    deliveries: int
    polls: int

    @property
    def total(self) -> int:
        return self.versions + self.events + self.alerts + self.deliveries + self.polls


def prune(session: Session, cutoff: datetime, *, dry_run: bool = True) -> Pruned:
    """Delete (or, in a dry run, count) what is older than `cutoff` and safe to forget."""
    deliveries = _finished_deliveries(cutoff)
    alerts = _idle_alerts(cutoff, deliveries)
    events = _reviewed_events(cutoff, alerts, _digested(session, alerts))
    versions = _old_versions(cutoff, events)
    polls = _unneeded_polls(cutoff, events, alerts)
    counted = Pruned(*(_count(session, query) for query in (versions, events, alerts, deliveries, polls)))
    if dry_run:
        return counted
    # Children first, each against what is still there: the same rules, applied in order.
    for model, query in ((Delivery, deliveries), (Alert, alerts), (Version, versions), (Event, events),
                         (Poll, polls)):
        session.execute(delete(model).where(model.id.in_(query)).execution_options(synchronize_session=False))
    return counted


def _count(session: Session, ids) -> int:
    return session.scalar(select(func.count()).select_from(ids.subquery())) or 0


def _finished_deliveries(cutoff: datetime):
    return select(Delivery.id).where(Delivery.state.in_((DeliveryState.SENT, DeliveryState.DEAD)),
                                     Delivery.created_at < cutoff)


def _idle_alerts(cutoff: datetime, deliveries):
    pending = exists().where(Delivery.alert_id == Alert.id, Delivery.id.not_in(deliveries))
    return select(Alert.id).where(Alert.created_at < cutoff, ~pending)


def _reviewed_events(cutoff: datetime, alerts, digested: set[int]):
    still_alerted = exists().where(Alert.event_id == Event.id, Alert.id.not_in(alerts))
    return select(Event.id).where(Event.detected_at < cutoff, Event.acked_at.is_not(None), ~still_alerted,
                                  Event.id.not_in(digested))


def _digested(session: Session, alerts) -> set[int]:
    """The events named by the digests that are kept: a digest still to deliver must still find its events."""
    details = session.scalars(select(Alert.detail).where(Alert.purpose == Purpose.DIGEST, Alert.id.not_in(alerts)))
    return {event_id for detail in details if detail for event_id in detail.get("event_ids", [])
            if isinstance(event_id, int)}


def _old_versions(cutoff: datetime, events):
    named = exists().where(Event.resource_id == Version.resource_id, Event.id.not_in(events),
                           or_(Event.from_version == Version.number, Event.to_version == Version.number))
    current = exists().where(Resource.id == Version.resource_id, Resource.current_version == Version.number)
    return select(Version.id).where(Version.observed_at < cutoff, ~current, ~named)


def _unneeded_polls(cutoff: datetime, events, alerts):
    # Only polls before the last complete one of their target and kind: it, and any failed streak
    # after it (an outage being counted), are what the next poll reads.
    later = aliased(Poll)
    last_complete = (select(func.max(later.id))
                     .where(later.target_id == Poll.target_id, later.kind == Poll.kind,
                            later.status == PollStatus.COMPLETE)
                     .scalar_subquery())
    event_poll = exists().where(Event.poll_id == Poll.id, Event.id.not_in(events))
    alert_poll = exists().where(Alert.poll_id == Poll.id, Alert.id.not_in(alerts))
    return select(Poll.id).where(Poll.started_at < cutoff, Poll.id < last_complete, ~event_poll, ~alert_poll)
