"""One poll of one target and kind: list everything, then record the drift at once.

The listing phase reads pages and keeps only what changed (spooled to a temporary
file, so memory stays flat whatever the number of objects). The recording phase
writes the poll's versions, events and alerts in one transaction. A listing
that fails changes nothing but the `polls` row that says why.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from watcher import diff, kinds
from watcher.errors import KindNotServed, SourceError, one_line
from watcher.snapshot import Snapshot, as_datetime, normalize
from watcher.store import Event, Poll, Resource, Version, ensure_target, poll_lock, utcnow

if TYPE_CHECKING:  # the SDK is imported only by what lists (poll_target), not by readers of DriftEvent
    from watcher.source import Page

log = logging.getLogger("watcher.poll")

# How many spooled snapshots are written per flush while recording.
_BATCH = 500


@dataclass
class DriftEvent:
    """One recorded drift event with everything an email needs to describe it."""

    event_id: int
    target: str
    kind: str
    object_id: str
    name: str | None
    change: str
    from_version: int | None
    to_version: int | None
    paths: list[str]
    changes: list[diff.Change]
    detected_at: datetime
    window_start: datetime | None
    remote_updated_at: datetime | None
    old_body: dict[str, Any] | None = None
    new_body: dict[str, Any] | None = None
    severity: str = "low"  # high | low, from the kind registry
    actor: dict[str, Any] | None = None  # who made the change, when a source knows


@dataclass
class PollOutcome:
    """What one poll of (target, kind) did, for the CLI summary and the alert composer."""

    target: str
    kind: str
    status: str  # complete | failed | not_served
    target_id: int | None = None
    poll_id: int | None = None
    baseline: bool = False
    objects: int = 0
    pages: int = 0
    error: str | None = None
    first_not_served: bool = False
    retired: bool = False
    events: list[DriftEvent] = field(default_factory=list)

    def count(self, change: str) -> int:
        return sum(1 for e in self.events if e.change == change)

    @property
    def ok(self) -> bool:
        return self.status != "failed"


# Given the open recording session and the outcome so far, the rows to add (alerts and their deliveries).
ComposeAlerts = Callable[[Session, PollOutcome], list[Any]]


def no_alerts(_session: Session, _outcome: PollOutcome) -> list[Any]:
    return []


@dataclass(frozen=True)
class _Known:
    resource_id: int
    content_hash: str
    version: int
    deleted: bool


def poll_kind(
    engine: Engine,
    target: str,
    base_url: str,
    kind: str,
    pages: Iterable[Page],
    *,
    ignore: list[str] | tuple[str, ...] = (),
    compose: ComposeAlerts = no_alerts,
    progress: Callable[[int, int], None] | None = None,
) -> PollOutcome:
    """Poll (target, kind) from `pages` and record the result, complete or failed.

    Raises only when even a failed poll cannot be recorded (the database is unreachable).
    """
    with poll_lock(engine, target, kind):
        with Session(engine) as session, session.begin():
            target_id = ensure_target(session, target, base_url).id
            known = _load_known(session, target_id, kind)
            previous = _last_complete_poll(session, target_id, kind)
            # The last complete poll saw the old content: an edit happened after it started.
            window_start = previous.started_at if previous else None
            earlier_rules = previous.ignore if previous and previous.ignore is not None else ignore
        started = utcnow()
        try:
            with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
                counts = _collect(pages, known, ignore, spool, progress)
                spool.seek(0)
                return _record_complete(
                    engine, target, target_id, kind, known, previous is None, window_start, started, counts,
                    _read_spool(spool), compose, _Rules(list(ignore), list(earlier_rules)),
                )
        except KindNotServed as exc:
            return _record_not_served(engine, target, target_id, kind, known, started, str(exc), compose)
        except SourceError as exc:
            return _record_failure(engine, target, target_id, kind, started, str(exc), compose)
        except Exception as exc:  # hostile content or a database refusal: still a recorded, announced failure
            log.exception("%s/%s: poll failed unexpectedly", target, kind)
            error = f"{target}/{kind}: could not record this listing: {type(exc).__name__}: {one_line(exc, 300)}"
            return _record_failure(engine, target, target_id, kind, started, error, compose)


@dataclass(frozen=True)
class _Rules:
    """The ignore rules of this poll, and those the previous complete poll applied."""

    now: list[str]
    before: list[str]

    def only_visibility_changed(self, old_body: dict[str, Any], new_body: dict[str, Any]) -> bool:
        """True when the bodies agree outside every path either rule set hides.

        Adding a rule hides a path; removing one reveals a path whose value was never
        recorded, so its first appearance is not evidence that anyone changed it.
        """
        if not self.changed:
            return False  # same rules: the bodies differ where the rules let us see
        either = self.either
        return normalize(old_body, either).content_hash == normalize(new_body, either).content_hash

    def comparable(self, old_body: dict[str, Any], new_body: dict[str, Any]) -> tuple[dict, dict]:
        """The two bodies as a diff should see them: without what either rule set hides."""
        if not self.changed:
            return old_body, new_body
        return normalize(old_body, self.either).body, normalize(new_body, self.either).body

    @property
    def changed(self) -> bool:
        return set(self.now) != set(self.before)

    @property
    def either(self) -> list[str]:
        return sorted(set(self.now) | set(self.before))


@dataclass
class _Counts:
    objects: int = 0
    pages: int = 0
    seen: set[str] = field(default_factory=set)


def _collect(pages, known, ignore, spool, progress) -> _Counts:
    """Read every page; spool the objects whose content differs from the record."""
    counts = _Counts()
    for page in pages:
        counts.pages += 1
        for raw in page.objects:
            snap = normalize(raw, ignore)
            counts.objects += 1
            counts.seen.add(snap.object_id)
            mine = known.get(snap.object_id)
            if mine is None or mine.deleted or mine.content_hash != snap.content_hash:
                spool.write(_spool_line(snap))
        if progress:
            progress(counts.pages, counts.objects)
    return counts


def _spool_line(snap: Snapshot) -> str:
    record = [snap.object_id, snap.name, snap.content_hash, snap.remote_updated_at, snap.canonical]
    return json.dumps(record, ensure_ascii=False) + "\n"


def _read_spool(spool) -> Iterator[tuple[str, str | None, str, int | None, str]]:
    for line in spool:
        yield tuple(json.loads(line))


def _load_known(session: Session, target_id: int, kind: str) -> dict[str, _Known]:
    rows = session.execute(
        select(Resource.remote_id, Resource.id, Resource.current_hash, Resource.current_version, Resource.deleted_at)
        .where(Resource.target_id == target_id, Resource.kind == kind)
    )
    return {r[0]: _Known(r[1], r[2], r[3], r[4] is not None) for r in rows}


def _last_complete_poll(session: Session, target_id: int, kind: str) -> Poll | None:
    return session.scalar(
        select(Poll)
        .where(Poll.target_id == target_id, Poll.kind == kind, Poll.status == "complete")
        .order_by(Poll.id.desc())
        .limit(1)
    )


def _record_complete(engine, target, target_id, kind, known, baseline, window_start, started, counts, spooled,
                     compose, rules: _Rules) -> PollOutcome:
    outcome = PollOutcome(target, kind, "complete", target_id=target_id, baseline=baseline,
                          objects=counts.objects, pages=counts.pages)
    with Session(engine) as session, session.begin():
        poll = Poll(target_id=target_id, kind=kind, started_at=started, finished_at=utcnow(), status="complete",
                    objects=counts.objects, pages=counts.pages, changes=0, ignore=rules.now)
        session.add(poll)
        session.flush()
        outcome.poll_id = poll.id
        recorder = _Recorder(session, outcome, poll, window_start, rules)
        for n, line in enumerate(spooled, 1):
            recorder.observed(known.get(line[0]), *line)
            if n % _BATCH == 0:
                session.flush()
        for object_id, mine in known.items():
            if not mine.deleted and object_id not in counts.seen:
                recorder.deleted(mine)
        recorder.finish()
        poll.changes = len(outcome.events)
        session.add_all(compose(session, outcome))
    return outcome


class _Recorder:
    """Writes the versions and events of one complete poll inside its transaction."""

    def __init__(self, session: Session, outcome: PollOutcome, poll: Poll, window_start: datetime | None,
                 rules: _Rules):
        self.session, self.outcome, self.poll = session, outcome, poll
        self.now = poll.finished_at
        self.window_start = window_start
        self.rules = rules
        self.origin = "baseline" if outcome.baseline else "poll"
        self.pending: list[tuple[Event, DriftEvent]] = []
        self.new: list[tuple] = []

    def observed(self, mine: _Known | None, object_id, name, digest, updated_at, canonical) -> None:
        """One listed object whose content differs from the record (or is new, or came back)."""
        updated = as_datetime(updated_at)
        if mine is None:
            self.new.append((object_id, name, digest, updated, canonical))
            if len(self.new) >= _BATCH:
                self._insert_new()
            return
        body = json.loads(canonical)
        resource = self.session.get(Resource, mine.resource_id)
        old_body = _version_body(self.session, resource.id, mine.version)
        resource.deleted_at, resource.name = None, name
        if digest != mine.content_hash:
            resource.current_version += 1
            resource.current_hash = digest
            self.session.add(Version(resource_id=resource.id, number=resource.current_version, content_hash=digest,
                                     body=canonical, observed_at=self.now, remote_updated_at=updated,
                                     origin=self.origin))
        if not mine.deleted and self.rules.only_visibility_changed(old_body, body):
            return  # only what the ignore rules hide changed: a new version, but no drift
        change = "reappeared" if mine.deleted else "modified"
        changes = diff.compare(*self.rules.comparable(old_body, body))
        self._event(resource.id, object_id, name, change, mine.version, resource.current_version, changes, updated,
                    old_body, body)

    def _insert_new(self) -> None:
        """Insert a batch of first-seen objects with their version 1 (a statement per table, not per row)."""
        batch, self.new = self.new, []
        if not batch:
            return
        rows = [dict(target_id=self.poll.target_id, kind=self.poll.kind, remote_id=object_id, name=name,
                     first_seen_at=self.now, current_version=1, current_hash=digest)
                for object_id, name, digest, _updated, _canonical in batch]
        ids = self.session.scalars(insert(Resource).returning(Resource.id, sort_by_parameter_order=True), rows).all()
        self.session.execute(insert(Version), [
            dict(resource_id=resource_id, number=1, content_hash=digest, body=canonical, observed_at=self.now,
                 remote_updated_at=updated, origin=self.origin, actor=None, note=None)
            for resource_id, (_id, _name, digest, updated, canonical) in zip(ids, batch)
        ])
        if self.outcome.baseline:
            return
        for resource_id, (object_id, name, _digest, updated, canonical) in zip(ids, batch):
            self._event(resource_id, object_id, name, "created", None, 1, [], updated, None, json.loads(canonical))

    def deleted(self, mine: _Known) -> None:
        """An object recorded as present that a complete listing no longer has."""
        resource = self.session.get(Resource, mine.resource_id)
        resource.deleted_at = self.now
        old_body = _version_body(self.session, resource.id, mine.version)
        self._event(resource.id, resource.remote_id, resource.name, "deleted", mine.version, None, [], None,
                    old_body, None)

    def finish(self) -> None:
        self._insert_new()
        self.session.flush()
        for row, drift in self.pending:
            drift.event_id = row.id
            self.outcome.events.append(drift)

    def _event(self, resource_id, object_id, name, change, from_version, to_version, changes, updated, old_body,
               new_body) -> None:
        paths = diff.changed_paths(changes)
        level = kinds.get(self.outcome.kind).severity(change, paths)
        row = Event(resource_id=resource_id, poll_id=self.poll.id, change=change, from_version=from_version,
                    to_version=to_version, paths=paths, detected_at=self.now, window_start=self.window_start,
                    remote_updated_at=updated, severity=level)
        self.session.add(row)
        drift = DriftEvent(0, self.outcome.target, self.outcome.kind, object_id, name, change, from_version,
                           to_version, paths, changes, self.now, self.window_start, updated, old_body, new_body,
                           severity=level)
        self.pending.append((row, drift))


def _version_body(session: Session, resource_id: int, number: int) -> dict[str, Any]:
    body = session.scalar(select(Version.body).where(Version.resource_id == resource_id, Version.number == number))
    return json.loads(body) if body else {}


def _record_failure(engine, target, target_id, kind, started, error, compose, retired=False) -> PollOutcome:
    outcome = PollOutcome(target, kind, "failed", target_id=target_id, error=error, retired=retired)
    with Session(engine) as session, session.begin():
        poll = Poll(target_id=target_id, kind=kind, started_at=started, finished_at=utcnow(), status="failed",
                    error=error)
        session.add(poll)
        session.flush()
        outcome.poll_id = poll.id
        session.add_all(compose(session, outcome))
    return outcome


def _record_not_served(engine, target, target_id, kind, known, started, error, compose) -> PollOutcome:
    """404 for a whole kind: loud when objects were recorded, else "not served here" once."""
    if any(not k.deleted for k in known.values()):
        message = (f"{target}/{kind}: this endpoint no longer serves {kind} ({error.split(': ', 1)[-1]}); "
                   f"{sum(not k.deleted for k in known.values())} recorded {kind} kept as they were")
        return _record_failure(engine, target, target_id, kind, started, message, compose, retired=True)
    outcome = PollOutcome(target, kind, "not_served", target_id=target_id, error=f"{kind} not served by this endpoint")
    with Session(engine) as session, session.begin():
        earlier = session.scalar(
            select(func.count()).select_from(Poll)
            .where(Poll.target_id == target_id, Poll.kind == kind, Poll.status == "not_served")
        )
        outcome.first_not_served = earlier == 0
        poll = Poll(target_id=target_id, kind=kind, started_at=started, finished_at=utcnow(), status="not_served",
                    error=outcome.error)
        session.add(poll)
        session.flush()
        outcome.poll_id = poll.id
        session.add_all(compose(session, outcome))
    return outcome


# --- the edge: polling configured targets -------------------------------------------------------


def poll_target(engine: Engine, target, *, compose: ComposeAlerts = no_alerts, progress=None) -> list[PollOutcome]:
    """Poll every kind of one configured target; one kind failing does not stop the other."""
    from watcher.source import list_pages, make_client

    client = make_client(target)
    outcomes = []
    try:
        for kind in target.kinds:
            label = f"{target.name}/{kind}"
            report = (lambda pages, objects, label=label: progress(label, pages, objects)) if progress else None
            outcome = poll_kind(engine, target.name, target.base_url, kind, list_pages(client, target.name, kind),
                                ignore=target.ignore, compose=compose, progress=report)
            if progress:
                progress(label, outcome.pages, outcome.objects, done=True)
            outcomes.append(outcome)
    finally:
        client.close()
    return outcomes


def summary_line(outcome: PollOutcome) -> str:
    """One line for a human: what a poll of (target, kind) found."""
    where = f"{outcome.target}/{outcome.kind}"
    if outcome.status == "failed":
        return f"{where}: FAILED: {(outcome.error or '').removeprefix(where + ': ')}"
    if outcome.status == "not_served":
        once = "" if outcome.first_not_served else " (as before)"
        return f"{where}: not served by this endpoint{once}"
    seen = f"{outcome.objects} {_plural(outcome.objects, 'object')} in {outcome.pages} {_plural(outcome.pages, 'page')}"
    if outcome.baseline:
        return f"{where}: baseline recorded, {seen}"
    counts = [f"{outcome.count(c)} {c}" for c in ("created", "modified", "deleted", "reappeared") if outcome.count(c)]
    return f"{where}: {seen}, " + (", ".join(counts) if counts else "no drift")


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"
