"""Recording one complete poll: compare outside the write lock, then write it all at once.

`prepare` reads the recorded versions of the objects a listing found changed and computes
their diffs, with no write lock held (a slow diff must not block an `ack`). `record` then
writes the poll's versions, events and outbox rows in one transaction, and refuses to write
over a state it did not start from: if another process recorded (target, kind) since this
poll began (its advisory lock was lost, a pooler dropped it), every conditional write
checks the resource's current version, and the poll ends as `AlreadyRecorded`, writing
nothing. Invariants 6 and 9 thereby hold without trusting any lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from watcher.compare import diff
from watcher.compare.normalize import normalize
from watcher.poll.outcome import WORKER, Context, LastPoll, PollOutcome, StateChange, WrittenVersion
from watcher.poll.spool import Counts, Known
from watcher.record.drift import DriftEvent
from watcher.record.locks import lock_key
from watcher.record.models import Event, Poll, Resource, Version, rows_updated
from watcher.record.schema import RULES_CHANGED, PollStatus
from watcher.times import as_datetime, utcnow

_BATCH = 500  # first-seen objects inserted per statement


class AlreadyRecorded(Exception):
    """Another process recorded this (target, kind) while this poll was listing: nothing is written."""


@dataclass(frozen=True)
class _Listed:
    """One spooled object: as listed now, normalized."""

    object_id: str
    name: str | None
    content_hash: str
    updated_at: int | None
    canonical: str
    raw_hash: str | None = None
    state: dict[str, Any] | None = None  # the platform-set fields as listed now


@dataclass
class _Change:
    """What recording does with one already-known object the listing found different."""

    listed: _Listed
    known: Known
    action: str  # drift | returned (reappeared unchanged) | renormalized | rehashed
    change: str | None = None  # modified | reappeared (drift only)
    changes: list[diff.Change] = field(default_factory=list)
    old_body: dict[str, Any] | None = None
    new_body: dict[str, Any] | None = None


@dataclass
class Prepared:
    """The comparisons of one poll, made before its transaction."""

    changed: dict[str, _Change] = field(default_factory=dict)
    deleted: list[tuple[Known, dict[str, Any]]] = field(default_factory=list)


def prepare(engine: Engine, context: Context, known: dict[str, Known], previous: LastPoll | None,
            spooled: Iterator[tuple], counts: Counts) -> Prepared:
    """Diff every changed object against its recorded version, and find the deleted ones (reads only)."""
    rules = _Rules(list(context.rules.ignore), _earlier_rules(previous, context))
    prepared = Prepared()
    with Session(engine) as session:
        for line in spooled:
            listed = _Listed(*line)
            mine = known.get(listed.object_id)
            if mine is None:
                continue
            old_body = _version_body(session, mine.resource_id, mine.version)
            prepared.changed[listed.object_id] = _compared(listed, mine, old_body, rules, context)
        for object_id, mine in known.items():
            if not mine.deleted and object_id not in counts.seen:
                prepared.deleted.append((mine, _version_body(session, mine.resource_id, mine.version)))
    return prepared


def _compared(listed: _Listed, mine: Known, old_body: dict[str, Any], rules: _Rules, context: Context) -> _Change:
    new_body = json.loads(listed.canonical)
    if mine.deleted and listed.content_hash == mine.content_hash:
        return _Change(listed, mine, "returned", "reappeared", [], old_body, new_body)  # back as it was: no version
    if not mine.deleted and new_body == old_body:
        return _Change(listed, mine, "rehashed")  # same content, another canonical form (an upgrade)
    if not mine.deleted and _normalization_only(old_body, new_body, listed, rules, context):
        return _Change(listed, mine, "renormalized", old_body=old_body, new_body=new_body)
    change = "reappeared" if mine.deleted else "modified"
    changes = diff.compare(*rules.comparable(old_body, new_body))
    return _Change(listed, mine, "drift", change, changes, old_body, new_body)


def _normalization_only(old_body, new_body, listed: _Listed, rules: _Rules, context: Context) -> bool:
    """True when what changed is how the watcher normalizes, not the object.

    An added ignore rule, a newly redacted secret or a newly volatile field: the old body,
    normalized the way this poll normalizes, is the new one. A removed rule reveals a path
    whose value was never recorded, so its first appearance is not evidence that anyone
    changed it either.
    """
    again = normalize(old_body, rules=context.rules, object_id=listed.object_id)
    if again.content_hash == listed.content_hash:
        return True
    return rules.only_visibility_changed(old_body, new_body)


@dataclass(frozen=True)
class _Rules:
    """The ignore rules of this poll, and those the previous complete poll applied."""

    now: list[str]
    before: list[str]

    def only_visibility_changed(self, old_body: dict[str, Any], new_body: dict[str, Any]) -> bool:
        """True when the bodies agree outside every path either rule set hides."""
        if not self.changed:
            return False
        either = self.either
        return normalize(old_body, either, object_id="x").content_hash == \
            normalize(new_body, either, object_id="x").content_hash

    def comparable(self, old_body: dict[str, Any], new_body: dict[str, Any]) -> tuple[dict, dict]:
        """The two bodies as a diff should see them: without what either rule set hides."""
        if not self.changed:
            return old_body, new_body
        return (normalize(old_body, self.either, object_id="x").body,
                normalize(new_body, self.either, object_id="x").body)

    @property
    def changed(self) -> bool:
        return set(self.now) != set(self.before)

    @property
    def either(self) -> list[str]:
        return sorted(set(self.now) | set(self.before))


def _earlier_rules(previous: LastPoll | None, context: Context) -> list[str]:
    if previous is not None and previous.ignore is not None:
        return list(previous.ignore)
    return list(context.rules.ignore)


def _version_body(session: Session, resource_id: int, number: int) -> dict[str, Any]:
    body = session.scalar(select(Version.body).where(Version.resource_id == resource_id, Version.number == number))
    return json.loads(body) if body else {}


# --- the write ------------------------------------------------------------------------------------


def record(engine: Engine, context: Context, target_id: int, known: dict[str, Known], previous: LastPoll | None,
           started: datetime, counts: Counts, prepared: Prepared, spooled: Iterable[tuple]) -> PollOutcome:
    """Write the poll, its versions, events and outbox rows in one transaction (or AlreadyRecorded)."""
    kind = context.kind.name
    outcome = PollOutcome(context.target, kind, PollStatus.COMPLETE, target_id=target_id, baseline=previous is None,
                          objects=counts.objects, pages=counts.pages)
    try:
        with Session(engine) as session, session.begin():
            _claim(session, context, target_id, previous)
            poll = Poll(target_id=target_id, kind=kind, started_at=started, finished_at=utcnow(),
                        status=PollStatus.COMPLETE, objects=counts.objects, pages=counts.pages, changes=0,
                        ignore=list(context.rules.ignore), settings=context.settings, worker=WORKER)
            session.add(poll)
            session.flush()
            outcome.poll_id = poll.id
            writer = _Writer(session, context, outcome, poll, previous.started_at if previous else None)
            writer.write_new(line for line in spooled if line[0] not in known)
            for change in prepared.changed.values():
                writer.write_change(change)
            for mine, old_body in prepared.deleted:
                writer.write_deleted(mine, old_body)
            writer.remember_raw(counts.raw_moved)
            writer.remember_state(counts.state_moved)
            writer.finish()
            context.check(session, outcome, writer.written)
            poll.changes = len(outcome.events)
            session.add_all(context.compose(session, outcome))
    except IntegrityError:
        # A first-seen object another process inserted meanwhile: its listing won.
        raise AlreadyRecorded("already recorded by another process (it recorded a new object first)") from None
    return outcome


def _claim(session: Session, context: Context, target_id: int, previous: LastPoll | None) -> None:
    """Serialize recordings of (target, kind) inside this transaction, and refuse a stale start."""
    if session.get_bind().dialect.name == "postgresql":
        # Held until commit, on this transaction's own connection: it cannot be lost mid-write.
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                        {"k": lock_key("record", context.target, context.kind.name)})
    newest = session.scalar(select(func.max(Poll.id)).where(
        Poll.target_id == target_id, Poll.kind == context.kind.name, Poll.status == PollStatus.COMPLETE))
    if newest != (previous.id if previous else None):
        raise AlreadyRecorded(f"already recorded by another process (poll {newest} completed while this one listed)")


class _Writer:
    """Writes the versions and events of one complete poll inside its transaction."""

    def __init__(self, session: Session, context: Context, outcome: PollOutcome, poll: Poll,
                 window_start: datetime | None):
        self.session, self.context, self.outcome, self.poll = session, context, outcome, poll
        if poll.finished_at is None:  # record() writes a poll that has finished
            raise ValueError("a poll is written once it has finished")
        self.now = poll.finished_at
        self.window_start = window_start
        self.origin = "baseline" if outcome.baseline else "poll"
        self.pending: list[tuple[Event, Any]] = []
        self.written: list[WrittenVersion] = []  # every version written, for the rules

    def write_new(self, lines: Iterable[tuple]) -> None:
        """Insert first-seen objects with their version 1, a batch per statement."""
        batch: list[_Listed] = []
        for line in lines:
            batch.append(_Listed(*line))
            if len(batch) >= _BATCH:
                self._insert(batch)
                batch = []
        self._insert(batch)

    def _insert(self, batch: list[_Listed]) -> None:
        if not batch:
            return
        rows = [dict(target_id=self.poll.target_id, kind=self.poll.kind, remote_id=item.object_id, name=item.name,
                     first_seen_at=self.now, current_version=1, current_hash=item.content_hash,
                     raw_hash=item.raw_hash, state=item.state) for item in batch]
        ids = self.session.scalars(insert(Resource).returning(Resource.id, sort_by_parameter_order=True), rows).all()
        self.session.execute(insert(Version), [
            dict(resource_id=resource_id, number=1, content_hash=item.content_hash, body=item.canonical,
                 observed_at=self.now, remote_updated_at=as_datetime(item.updated_at), origin=self.origin,
                 actor=None, note=None)
            for resource_id, item in zip(ids, batch)
        ])
        self.written += [WrittenVersion(resource_id, item.object_id, item.name, 1, item.canonical)
                         for resource_id, item in zip(ids, batch)]
        if self.outcome.baseline:
            return
        for resource_id, item in zip(ids, batch):
            self._event(resource_id, item.object_id, item.name, "created", None, 1, [],
                        as_datetime(item.updated_at), None, json.loads(item.canonical))

    def write_change(self, change: _Change) -> None:
        listed, mine = change.listed, change.known
        if change.action == "returned":
            self._set_current(mine, mine.version, listed)
            self._event(mine.resource_id, listed.object_id, listed.name, "reappeared", mine.version, mine.version, [],
                        as_datetime(listed.updated_at), change.old_body, change.new_body)
            return
        if change.action == "rehashed":
            self._set_current(mine, mine.version, listed)
            self.session.execute(update(Version).where(Version.resource_id == mine.resource_id,
                                                       Version.number == mine.version)
                                 .values(content_hash=listed.content_hash, body=listed.canonical))
            return
        number = mine.version + 1
        self._set_current(mine, number, listed)
        updated = as_datetime(listed.updated_at)
        note = RULES_CHANGED if change.action == "renormalized" else None
        self.session.add(Version(resource_id=mine.resource_id, number=number, content_hash=listed.content_hash,
                                 body=listed.canonical, observed_at=self.now, remote_updated_at=updated,
                                 origin=self.origin, note=note))
        self.written.append(WrittenVersion(mine.resource_id, listed.object_id, listed.name, number, listed.canonical))
        if change.action == "drift":
            self._event(mine.resource_id, listed.object_id, listed.name, change.change, mine.version, number,
                        change.changes, updated, change.old_body, change.new_body)

    def _set_current(self, mine: Known, number: int, listed: _Listed) -> None:
        """Move the resource to `number` only if it is still where this poll found it (compare-and-set)."""
        moved = rows_updated(self.session, update(Resource)
                             .where(Resource.id == mine.resource_id, Resource.current_version == mine.version,
                                    Resource.current_hash == mine.content_hash)
                             .values(current_version=number, current_hash=listed.content_hash, name=listed.name,
                                     deleted_at=None, raw_hash=listed.raw_hash, state=listed.state))
        if moved != 1:
            raise AlreadyRecorded(f"already recorded by another process ({listed.object_id} moved past "
                                  f"version {mine.version} while this poll listed)")
        if not mine.deleted:
            self._state_changed(listed.object_id, listed.name, mine.state_of(), listed.state or {})

    def write_deleted(self, mine: Known, old_body: dict[str, Any]) -> None:
        """An object recorded as present that a complete listing no longer has."""
        resource = self.session.get(Resource, mine.resource_id)
        if resource is None:  # `mine` was read from the record, which never deletes a resource
            raise LookupError(f"resource {mine.resource_id} is not in the record")
        moved = rows_updated(self.session, update(Resource)
                             .where(Resource.id == mine.resource_id, Resource.current_version == mine.version,
                                    Resource.deleted_at.is_(None))
                             .values(deleted_at=self.now))
        if moved != 1:
            raise AlreadyRecorded(f"already recorded by another process ({resource.remote_id} changed while this "
                                  "poll listed)")
        self._event(mine.resource_id, resource.remote_id, resource.name, "deleted", mine.version, None, [], None,
                    old_body, None)

    def remember_raw(self, moved: list[tuple[int, int, str, str | None]]) -> None:
        """New raw fingerprints and labels of objects whose content did not change (one statement for all), each
        only while its object is still at the version it was compared with: a write recorded meanwhile keeps its own."""
        if moved:
            table = Resource.__table__  # Core executemany: one statement, many rows
            assert isinstance(table, Table)
            self.session.execute(update(table).where(table.c.id == bindparam("rid"),
                                                     table.c.current_version == bindparam("number"))
                                 .values(raw_hash=bindparam("raw"), name=bindparam("label")),
                                 [{"rid": rid, "number": number, "raw": raw, "label": name}
                                  for rid, number, raw, name in moved])

    def remember_state(self, moved: list[tuple[int, int, str, str | None, dict[str, Any] | None, dict[str, Any]]]
                       ) -> None:
        """The new platform-set state of objects whose content did not change (one statement for all), each
        only while its object is still at the version it was compared with; each move is a state change."""
        if not moved:
            return
        table = Resource.__table__
        assert isinstance(table, Table)
        self.session.execute(update(table).where(table.c.id == bindparam("rid"),
                                                 table.c.current_version == bindparam("number"))
                             .values(state=bindparam("now")),
                             [{"rid": rid, "number": number, "now": after}
                              for rid, number, _id, _name, _before, after in moved])
        for _rid, _number, object_id, name, before, after in moved:
            self._state_changed(object_id, name, before, after)

    def _state_changed(self, object_id: str, name: str | None, before: dict[str, Any] | None,
                       after: dict[str, Any]) -> None:
        """A move of the platform-set state is a state change; a first record of it (`before` None) is not."""
        if before is not None and before != after and not self.outcome.baseline:
            self.outcome.state_changes.append(StateChange(object_id=object_id, name=name, before=before, after=after))

    def finish(self) -> None:
        self.session.flush()
        for row, drift in self.pending:
            drift.event_id = row.id
            self.outcome.events.append(drift)

    def _event(self, resource_id, object_id, name, change, from_version, to_version, changes, updated, old_body,
               new_body) -> None:
        paths = diff.changed_paths(changes)
        level = self.context.kind.severity(change, paths)
        row = Event(resource_id=resource_id, poll_id=self.poll.id, change=change, from_version=from_version,
                    to_version=to_version, paths=paths, detected_at=self.now, window_start=self.window_start,
                    remote_updated_at=updated, severity=level)
        self.session.add(row)
        drift = DriftEvent(event_id=0, target=self.outcome.target, kind=self.outcome.kind, object_id=object_id,
                           name=name, change=change, from_version=from_version, to_version=to_version, paths=paths,
                           changes=changes, detected_at=self.now, window_start=self.window_start,
                           remote_updated_at=updated, old_body=old_body, new_body=new_body, severity=level)
        self.pending.append((row, drift))
