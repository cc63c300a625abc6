"""Reading the record: find an object, its versions, the version live at a time, events.

Every function takes an open Session and returns plain values or rows; the CLI
formats them. Lookup failures raise RecordError with a one-line reason.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from watcher.errors import NotLive, RecordError
from watcher.kinds.base import EventChange
from watcher.record.models import Event, Resource, Target, Version
from watcher.record.rows import LiveVersion, asked_span, choose_resource, live_during
from watcher.times import iso, utcnow


def find_resource(session: Session, ref: str, *, target: str | None = None, kind: str | None = None) -> Resource:
    """The object whose remote id or name is `ref` (on `target`, of `kind`, if given); RecordError if none or many."""
    query = select(Resource).join(Target).where(or_(Resource.remote_id == ref, Resource.name == ref))
    if target:
        query = query.where(Target.name == target)
    if kind:
        query = query.where(Resource.kind == kind)
    matches = list(session.scalars(query))
    return choose_resource(matches, ref, target=target, kind=kind)


def versions(session: Session, resource: Resource) -> list[Version]:
    """Every version of `resource`, oldest first."""
    return list(session.scalars(select(Version).where(Version.resource_id == resource.id).order_by(Version.number)))


def version(session: Session, resource: Resource, number: int) -> Version:
    """Version `number` of `resource`, or RecordError."""
    row = session.scalar(select(Version).where(Version.resource_id == resource.id, Version.number == number))
    if row is None:
        raise RecordError(f"{resource.remote_id} has no version {number} (it has 1..{resource.current_version})")
    return row


def version_at(session: Session, resource: Resource, moment: datetime) -> LiveVersion:
    """The version that was live at `moment`; NotLive before the first version or while deleted.

    One indexed lookup whatever the number of versions: the highest-numbered version whose
    edit time (the remote `updated_at`, else the poll that saw it) is at or before `moment`.
    A time given to the second stands for that whole second (`watcher.record.rows.asked_span`): the
    answer is the version live at its start, with the edit window when the next may have been live.
    """
    start, end = asked_span(moment)
    live_from = func.coalesce(Version.remote_updated_at, Version.observed_at)
    live = session.scalars(select(Version).where(Version.resource_id == resource.id, live_from <= start)
                           .order_by(Version.number.desc()).limit(1)).first()
    if live is None:  # none yet at the start: the first version, if it was seen within the asked second
        live = session.scalars(select(Version).where(Version.resource_id == resource.id, live_from <= end)
                               .order_by(Version.number).limit(1)).first()
    if live is None:
        first = resource.first_seen_at
        raise NotLive(f"{resource.remote_id} was not yet recorded at {iso(moment)} (first seen {iso(first)})",
                      reason="before_first_seen", since=first)
    _refuse_if_deleted(session, resource, end)
    following = session.scalars(select(Version).where(Version.resource_id == resource.id,
                                                      Version.number == live.number + 1)).first()
    window = _edit_window_start(session, resource, following) if following else None
    return live_during(live, following, window, end)


def _refuse_if_deleted(session: Session, resource: Resource, moment: datetime) -> None:
    """NotLive when the last deletion or reappearance at or before `moment` was a deletion."""
    last = session.scalars(
        select(Event).where(Event.resource_id == resource.id,
                            Event.change.in_((EventChange.DELETED, EventChange.REAPPEARED)),
                            Event.detected_at <= moment).order_by(Event.id.desc()).limit(1)).first()
    if last is None or last.change != EventChange.DELETED:
        return
    back = session.scalar(select(Event.detected_at).where(
        Event.resource_id == resource.id, Event.change == EventChange.REAPPEARED, Event.id > last.id,
    ).order_by(Event.id))
    again = f" (listed again at {iso(back)})" if back else ""
    raise NotLive(f"{resource.remote_id} was deleted at {iso(last.detected_at)}{again}", reason="deleted",
                  since=last.detected_at, back=back)


def _edit_window_start(session: Session, resource: Resource, following: Version) -> datetime | None:
    if following.remote_updated_at is not None:
        return None
    return session.scalar(
        select(Event.window_start).where(Event.resource_id == resource.id, Event.to_version == following.number)
    )


def body(row: Version) -> dict[str, Any]:
    return json.loads(row.body)


def list_events(session: Session, *, open_only: bool = False, since: datetime | None = None,
                target: str | None = None) -> list[Event]:
    """Drift events, oldest first."""
    query = select(Event).join(Resource).join(Target).order_by(Event.id)
    if open_only:
        query = query.where(Event.acked_at.is_(None))
    if since is not None:
        query = query.where(Event.detected_at >= since)
    if target:
        query = query.where(Target.name == target)
    return list(session.scalars(query))


def acknowledge(session: Session, event_id: int, by: str, note: str | None) -> Event:
    """Mark event `event_id` as reviewed by `by`."""
    # Locked (PostgreSQL): two reviewers at once must not both pass the check below.
    row = session.get(Event, event_id, with_for_update=True)
    if row is None:
        raise RecordError(f"no event {event_id}")
    if not by.strip():
        raise RecordError("--by must name who acknowledges")
    if row.acked_at is not None:
        # An audit trail keeps the first review; a second one would erase who approved it.
        raise RecordError(f"event {event_id} was already acknowledged by {row.acked_by} at {iso(row.acked_at)}")
    row.acked_by, row.acked_at, row.note = by.strip(), utcnow(), note
    return row
