"""Alerts and drift events read back from the record: what a channel renders when it delivers an alert,
and what the publish feed hands on. The latest `actor` is read with them, so an audit log entry that
arrived after the alert was queued still says who."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.alerts.notices import Notice, notice_for
from watcher.compare import diff
from watcher.kinds import registry
from watcher.kinds.base import EventChange
from watcher.record.documents import event_severity
from watcher.record.drift import DriftEvent
from watcher.record.models import Alert, Event, Version
from watcher.record.schema import Purpose
from watcher.times import utcnow


def load(session: Session, alert_id: int | None):
    """The alert as channels render it (a `watcher.alerts.channels.base.Alert`), read from the record now (the
    latest `actor` included)."""
    from watcher.alerts.channels import base as channels  # the channels' models: not for the feed, which reads events

    row = session.get(Alert, alert_id) if alert_id is not None else None
    if row is None:  # a delivery queued by hand, with its email already rendered
        return channels.Alert(0, "event", "", "low", None, None, utcnow())
    target = row.target.name if row.target else None
    events: tuple = ()
    if row.purpose == Purpose.EVENT and row.event_id is not None:
        event = session.get(Event, row.event_id)
        if event is None:  # the foreign key, and prune keeps every event an alert it keeps names
            raise LookupError(f"alert {row.id}: its event {row.event_id} is not in the record")
        events = (recorded_drift(session, event),)
    elif row.purpose == Purpose.DIGEST and row.detail:
        found = session.scalars(select(Event).where(Event.id.in_(row.detail.get("event_ids", []))).order_by(Event.id))
        events = tuple(recorded_drift(session, event, with_changes=False) for event in found)
    notice = None
    if not events:
        notice = notice_for(row.purpose, target, row.kind, row.detail) if row.detail is not None else \
            Notice(row.purpose, row.title, row.title, [], [])  # a row from before channels
    return channels.Alert(row.id, row.purpose, row.title, row.severity, target, row.kind, row.created_at, events,
                          notice, dict(row.detail or {}), tuple(row.routing or ()))


def recorded_drift(session: Session, row: Event, *, with_changes: bool = True) -> DriftEvent:
    """A recorded event as the poll described it: its versions' bodies and (with_changes) their diff.

    The diff is limited to the event's recorded paths: what ignore rules hid or revealed
    between the two versions was never drift.
    """
    resource = row.resource
    old = _body(session, resource.id, row.from_version)
    new = _body(session, resource.id, row.to_version)
    changes: list[diff.Change] = []
    compared = row.change in (EventChange.MODIFIED, EventChange.REAPPEARED)
    if with_changes and compared and old is not None and new is not None:
        wanted = set(row.paths or [])
        changes = [change for change in diff.compare(old, new) if change.path in wanted]
    return DriftEvent(event_id=row.id, target=resource.target.name, kind=resource.kind, object_id=resource.remote_id,
                      name=_name_at(resource, new or old or {}), change=row.change, from_version=row.from_version,
                      to_version=row.to_version, paths=list(row.paths or []), changes=changes,
                      detected_at=row.detected_at, window_start=row.window_start,
                      remote_updated_at=row.remote_updated_at, old_body=old, new_body=new,
                      severity=event_severity(row), actor=row.actor, rule=row.rule, message=row.message)


def _name_at(resource, body: dict[str, Any]) -> str | None:
    """The object's name at that version (a renamed object), or the record's label where the listing made it."""
    kind = registry.get(resource.kind) if resource.kind in registry.names() else None
    if kind is not None and kind.named_under_parent:
        return resource.name
    named = body.get(kind.name_field if kind else "name")
    return named if isinstance(named, str) else resource.name


def _body(session: Session, resource_id: int, number: int | None) -> dict[str, Any] | None:
    if number is None:
        return None
    body = session.scalar(select(Version.body).where(Version.resource_id == resource_id, Version.number == number))
    return json.loads(body) if body else None
