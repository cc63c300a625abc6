"""Questions about the whole record: what is tracked, how each target and kind is doing, pages of
events, and the figures /metrics exports. The `objects` and `status` commands and the web UI ask
the same functions, so a page and a command never disagree.

Every function takes an open Session and returns plain values or rows; nothing here formats.
Figures that processes sharing one database must agree on are read from the database each time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, literal, select, true, tuple_, union_all
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, contains_eager, defer

from watcher.errors import RecordError
from watcher.kinds import registry
from watcher.record.models import Alert, Delivery, Event, Poll, Resource, Target, Version
from watcher.record.rows import (
    Breaking,
    Deliveries,
    Fighting,
    KindStatus,
    PlatformState,
    TrackedObject,
    alarming,
    breaking_from,
    fighting_from,
)
from watcher.record.schema import DeliveryState, PollStatus

PAGE_LIMIT = 100  # rows per page unless asked otherwise
MAX_PAGE_LIMIT = 1000


# --- per target and kind ------------------------------------------------------------------------


def kind_statuses(session: Session, expected: Iterable[tuple[str, str]] = (), *, count_objects: bool = True,
                  count_open: bool = True, disabled: Iterable[str] = ()) -> list[KindStatus]:
    """Every (target, kind) that was polled or has objects, plus the `expected` ones (configured, maybe
    never polled yet), sorted by target then kind.

    The last poll of each pair is found by an index probe per pair, not by scanning every poll;
    the two counts (objects, open events) cost a pass each and may be left out (then None).
    Rows of the `disabled` targets say so.
    """
    expected, disabled = list(expected), set(disabled)
    names = list(dict.fromkeys([*registry.names(), *(kind for _target, kind in expected)]))
    latest = _latest_polls(session, names)
    objects = _object_counts(session) if count_objects else {}
    open_events = _open_event_counts(session) if count_open else {}
    targets = _target_names(session)
    pairs = {(targets[t], k) for t, k in (*latest, *objects, *open_events)} | set(expected)
    ids = {name: target_id for target_id, name in targets.items()}
    rows = []
    for target, kind in sorted(pairs):
        key = (ids.get(target, 0), kind)  # 0 matches no row: a configured target not polled yet has none
        last, complete = latest.get(key, (None, None))
        rows.append(KindStatus(
            target=target, kind=kind, status=last.status if last else None,
            started_at=last.started_at if last else None, finished_at=last.finished_at if last else None,
            error=last.error if last else None, objects=objects.get(key, 0) if count_objects else None,
            open_events=open_events.get(key, 0) if count_open else None, last_complete_at=complete,
            worker=last.worker if last else None, enabled=target not in disabled,
        ))
    return rows


def _latest_polls(session: Session, names: list[str]) -> dict[tuple[int, str], tuple[Poll, datetime | None]]:
    """(target id, kind) → (its last poll, when its last complete poll finished), for every target and kind name."""
    if not names:
        return {}
    kind_names = union_all(*[select(literal(name).label("kind")) for name in names]).subquery("kind_names")
    # Each probe reads one entry of a (target, kind[, status], id) index, newest first. Written with
    # max(id), or with an equality on the last column before id, PostgreSQL walks the primary key
    # backwards instead, through every poll of every pair when a pair has none; a one-value range
    # (BETWEEN x AND x) keeps it on the index, whose order it needs for the ORDER BY.
    last = (select(Poll.id).where(Poll.target_id == Target.id, Poll.kind.between(kind_names.c.kind, kind_names.c.kind))
            .order_by(Poll.kind.desc(), Poll.id.desc()).limit(1).scalar_subquery())
    complete = (select(Poll.id).where(Poll.target_id == Target.id, Poll.kind == kind_names.c.kind,
                                      Poll.status.between(PollStatus.COMPLETE, PollStatus.COMPLETE))
                .order_by(Poll.status.desc(), Poll.id.desc()).limit(1).scalar_subquery())
    found = session.execute(select(last.label("last"), complete.label("complete"))
                            .select_from(Target).join(kind_names, true())).all()
    wanted = {poll_id for row in found for poll_id in row if poll_id is not None}
    if not wanted:
        return {}
    polls = {p.id: p for p in session.scalars(select(Poll).where(Poll.id.in_(wanted)))}
    result = {}
    for last_id, complete_id in found:
        if last_id is None:
            continue
        poll = polls[last_id]
        result[(poll.target_id, poll.kind)] = (poll, polls[complete_id].finished_at if complete_id else None)
    return result


def _object_counts(session: Session) -> dict[tuple[int, str], int]:
    return _counts_by_pair(session, select(Resource.target_id, Resource.kind, func.count())
                           .where(Resource.deleted_at.is_(None)).group_by(Resource.target_id, Resource.kind))


def _open_event_counts(session: Session) -> dict[tuple[int, str], int]:
    # Counted per object first (one pass over the open events' index), then summed per pair.
    per_object = (select(Event.resource_id, func.count().label("n")).where(Event.acked_at.is_(None))
                  .group_by(Event.resource_id).subquery())
    return _counts_by_pair(session, select(Resource.target_id, Resource.kind, func.sum(per_object.c.n))
                           .join(per_object, per_object.c.resource_id == Resource.id)
                           .group_by(Resource.target_id, Resource.kind))


def _counts_by_pair(session: Session, query) -> dict[tuple[int, str], int]:
    return {(target_id, kind): int(count) for target_id, kind, count in session.execute(query)}


def stale(statuses: Iterable[KindStatus], intervals: dict[str, float], now: datetime,
          factor: float = 3.0) -> list[tuple[KindStatus, str]]:
    """The (target, kind) pairs of configured targets (`intervals`: target → seconds) with no complete
    poll within `factor` intervals, each with why. A kind the endpoint does not serve is not stale,
    unless the target serves no kind at all: then its address is wrong, and nothing is watched there."""
    statuses = list(statuses)
    found = []
    served = {row.target for row in statuses if row.status != PollStatus.NOT_SERVED}
    for row in statuses:
        interval = intervals.get(row.target)
        if interval is not None and row.status == PollStatus.NOT_SERVED and row.target not in served:
            found.append((row, "the target serves no kind at all: check its base_url (the API's root, such as "
                               "https://api.openai.com/v1)"))
            continue
        if interval is None or row.status == PollStatus.NOT_SERVED:
            continue
        if row.last_complete_at is None:
            found.append((row, "no complete poll yet"))
        elif now - row.last_complete_at > timedelta(seconds=factor * interval):
            found.append((row, f"no complete poll for {int((now - row.last_complete_at).total_seconds())} s"))
    return found


# --- deliveries ---------------------------------------------------------------------------------


def breaking(session: Session) -> list[Breaking]:
    """The live objects whose last event of a rule is a violation, rule by rule."""
    rows = session.execute(select(Event.rule, Target.name, Resource.kind, Resource.remote_id, Resource.name,
                                  Event.to_version, Event.message, Event.change)
                           .join(Resource, Resource.id == Event.resource_id)
                           .join(Target, Target.id == Resource.target_id)
                           .where(Event.change.in_(("violation", "resolved")), Resource.deleted_at.is_(None))
                           .order_by(Event.id))
    return breaking_from(rows)


def fighting(session: Session) -> list[Fighting]:
    """The objects self-heal left alone and nobody has written since (see `watcher.record.rows.fighting_from`)."""
    notices = [(target, kind, str((detail or {}).get("object_id", "")), (detail or {}).get("name"), created)
               for target, kind, detail, created in session.execute(
                   select(Target.name, Alert.kind, Alert.detail, Alert.created_at)
                   .join(Target, Target.id == Alert.target_id).where(Alert.purpose == "fighting"))]
    writes = {(target, kind, object_id): at for target, kind, object_id, at in session.execute(
        select(Target.name, Resource.kind, Resource.remote_id, func.max(Version.observed_at))
        .join(Resource, Resource.id == Version.resource_id).join(Target, Target.id == Resource.target_id)
        .where(Version.origin.in_(("heal", "apply", "restore")))
        .group_by(Target.name, Resource.kind, Resource.remote_id))}
    return fighting_from(notices, writes)


def platform_states(session: Session) -> list[PlatformState]:
    """The live objects the platform holds in an alarming state (see `watcher.record.rows.alarming`)."""
    rows = session.execute(select(Target.name, Resource.kind, Resource.remote_id, Resource.name, Resource.state)
                           .join(Target, Target.id == Resource.target_id)
                           .where(Resource.state.is_not(None), Resource.deleted_at.is_(None))
                           .order_by(Target.name, Resource.kind, Resource.remote_id))
    found = [PlatformState(*row) for row in rows]
    return [row for row in found if alarming(row.kind, row.state)]


def deliveries(session: Session) -> list[Deliveries]:
    """One entry per channel that has outbox rows."""
    channel, state = Delivery.channel, Delivery.state
    rows = session.execute(select(channel, state, func.count(), func.coalesce(func.sum(Delivery.attempts), 0))
                           .group_by(channel, state)).all()
    figures: dict[str, dict[str, int]] = {}
    for name, row_state, count, attempts in rows:
        entry = figures.setdefault(name, {"pending": 0, "sent": 0, "dead": 0, "failed_attempts": 0})
        entry[row_state] += count
        # Every try counts one attempt; a sent row's last one succeeded.
        entry["failed_attempts"] += int(attempts) - (count if row_state == DeliveryState.SENT else 0)
    return [Deliveries(name, **entry) for name, entry in sorted(figures.items())]


# --- objects ------------------------------------------------------------------------------------


def list_objects(session: Session, *, target: str | None = None, kind: str | None = None,
                 deleted: bool = False, after: int | None = None, limit: int | None = None) -> list[TrackedObject]:
    """Tracked objects by target, then kind, then first recorded; deleted ones only with `deleted`.

    `after` is the `resource_id` of the last object of the previous page.
    """
    current = and_(Version.resource_id == Resource.id, Version.number == Resource.current_version)
    edited = func.coalesce(Version.remote_updated_at, Version.observed_at)
    query = (select(Resource.id, Target.name, Resource.kind, Resource.remote_id, Resource.name,
                    Resource.current_version, Resource.deleted_at, edited)
             .join(Target, Resource.target_id == Target.id).join(Version, current)
             .order_by(Target.name, Resource.kind, Resource.id))
    if target:
        query = query.where(Target.name == target)
    if kind:
        query = query.where(Resource.kind == kind)
    if not deleted:
        query = query.where(Resource.deleted_at.is_(None))
    if after is not None:
        row = session.execute(select(Target.name, Resource.kind).join(Target, Resource.target_id == Target.id)
                              .where(Resource.id == after)).first()
        last = tuple(row) if row else ("", "")
        query = query.where(tuple_(Target.name, Resource.kind, Resource.id) > tuple_(*last, after))
    if limit is not None:
        query = query.limit(limit)
    return [TrackedObject(rid, t, k, oid, name, number, gone, gone or changed)
            for rid, t, k, oid, name, number, gone, changed in session.execute(query)]


def find_object(session: Session, target: str, kind: str, object_id: str) -> Resource:
    """The object `object_id` of `kind` on `target`; RecordError when the record has none."""
    row = session.scalars(select(Resource).join(Target).options(contains_eager(Resource.target))
                          .where(Target.name == target, Resource.kind == kind, Resource.remote_id == object_id)).first()
    if row is None:
        raise RecordError(f"no recorded {registry.label(kind)} {object_id!r} on target {target!r}")
    return row


def versions_page(session: Session, resource: Resource, *, after: int | None = None,
                  limit: int | None = None) -> list[Version]:
    """Versions of `resource`, oldest first, after version number `after`; bodies are not loaded
    (a list of versions never shows them, and 256k-character instructions add up)."""
    query = (select(Version).options(defer(Version.body)).where(Version.resource_id == resource.id)
             .order_by(Version.number))
    if after is not None:
        query = query.where(Version.number > after)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


# --- events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """Which events: open ones only, of one target, kind, severity or object, detected since a time."""

    open_only: bool = False
    target: str | None = None
    kind: str | None = None
    severity: str | None = None
    since: datetime | None = None
    resource_id: int | None = None


def events_page(session: Session, where: EventFilter = EventFilter(), *, after: int | None = None,
                before: int | None = None, limit: int = PAGE_LIMIT, newest_first: bool = False) -> list[Event]:
    """A page of drift events, by id: oldest first after `after`, or newest first before `before`.

    Each event comes with its object and target loaded (no query per row). The page's ids are
    found first, so a filter matching many events sorts narrow rows, never whole events.
    """
    order = Event.id.desc() if newest_first else Event.id
    ids = select(Event.id).join(Resource, Event.resource_id == Resource.id).join(Target)
    ids = ids.where(*_event_conditions(where))
    if after is not None:
        ids = ids.where(Event.id > after)
    if before is not None:
        ids = ids.where(Event.id < before)
    wanted = list(session.scalars(ids.order_by(order).limit(limit)))
    if not wanted:
        return []
    query = (select(Event).join(Resource, Event.resource_id == Resource.id).join(Target)
             .options(contains_eager(Event.resource).contains_eager(Resource.target))
             .where(Event.id.in_(wanted)).order_by(order))
    return list(session.scalars(query))


def _event_conditions(where: EventFilter) -> list:
    conditions: list[ColumnElement[bool]] = []
    if where.open_only:
        conditions.append(Event.acked_at.is_(None))
    if where.target:
        conditions.append(Target.name == where.target)
    if where.kind:
        conditions.append(Resource.kind == where.kind)
    if where.severity:
        conditions.append(Event.severity == where.severity)
    if where.since is not None:
        conditions.append(Event.detected_at >= where.since)
    if where.resource_id is not None:
        conditions.append(Event.resource_id == where.resource_id)
    return conditions or [true()]


def has_events(session: Session, where: EventFilter, *, after: int | None = None,
               before: int | None = None) -> bool:
    """True when an event matching `where` exists past the given id (a page has a neighbour)."""
    query = select(Event.id).join(Resource, Event.resource_id == Resource.id).join(Target)
    query = query.where(*_event_conditions(where))
    if after is not None:
        query = query.where(Event.id > after)
    if before is not None:
        query = query.where(Event.id < before)
    return session.scalar(query.limit(1)) is not None


# --- figures for /metrics -----------------------------------------------------------------------


def poll_counts(session: Session) -> list[tuple[str, str, str, int]]:
    """(target, kind, status, polls) over every poll ever recorded (an index-only count)."""
    names = _target_names(session)
    columns = (Poll.target_id, Poll.kind, Poll.status)
    query = select(*columns, func.count()).group_by(*columns)
    return [(names[target_id], kind, status, count) for target_id, kind, status, count in session.execute(query)]


def drift_counts(session: Session) -> list[tuple[str, str, str, str, int]]:
    """(target, kind, change, severity, events) over every drift event ever recorded."""
    names = _target_names(session)
    per_object = (select(Event.resource_id, Event.change, Event.severity, func.count().label("n"))
                  .group_by(Event.resource_id, Event.change, Event.severity).subquery())
    query = (select(Resource.target_id, Resource.kind, per_object.c.change, per_object.c.severity,
                    func.sum(per_object.c.n))
             .join(per_object, per_object.c.resource_id == Resource.id)
             .group_by(Resource.target_id, Resource.kind, per_object.c.change, per_object.c.severity))
    return [(names[target_id], kind, change, severity or "unknown", int(count))
            for target_id, kind, change, severity, count in session.execute(query)]


def _target_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Target.id, Target.name)).all())


def count_pending(engine: Engine) -> int:
    """Deliveries still pending (due or waiting for their next attempt), on every channel."""
    with Session(engine) as session:
        pending = select(func.count()).select_from(Delivery).where(Delivery.state == DeliveryState.PENDING)
        return session.scalar(pending) or 0
