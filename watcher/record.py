"""Reading the record in plain SQL, for the reading commands: find an object, its versions, the
version live at a time, drift events, the objects tracked.

The same questions as `watcher.history` and `watcher.overview` (which the web UI asks through
SQLAlchemy sessions), answered over a `watcher.sql.Database` so a command that only reads starts
without SQLAlchemy. Rows carry the attribute names of the models, so `watcher.documents` shapes
both alike. Lookup failures raise RecordError with the same one-line reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from watcher.errors import NotLive, RecordError
from watcher.sql import Database, instant, json_value, moment
from watcher.times import iso


@dataclass(frozen=True)
class TargetRow:
    name: str


@dataclass(frozen=True)
class ObjectRow:
    """A recorded object (a `resources` row) and its target."""

    id: int
    target: TargetRow
    kind: str
    remote_id: str
    name: str | None
    first_seen_at: datetime
    deleted_at: datetime | None
    current_version: int


@dataclass(frozen=True)
class VersionRow:
    number: int
    content_hash: str
    body: str
    observed_at: datetime
    remote_updated_at: datetime | None
    origin: str
    actor: str | None
    note: str | None


@dataclass(frozen=True)
class EventRow:
    id: int
    resource: ObjectRow
    change: str
    from_version: int | None
    to_version: int | None
    paths: list[str]
    detected_at: datetime
    window_start: datetime | None
    acked_by: str | None
    acked_at: datetime | None
    note: str | None
    severity: str | None
    actor: dict[str, Any] | None


# The note of a version recorded because the watcher's own rules changed, not the object.
RULES_CHANGED = "the watcher's rules changed (ignore, redact or volatile fields): not an edit on the platform"


@dataclass(frozen=True)
class LiveVersion:
    """The version live at a moment, and how sure the record is of it.

    When the moment falls in an edit window (the next version was edited in at some time between
    two polls, `uncertain_since` .. `uncertain_until`), either this version or the next was live.
    """

    version: Any
    uncertain_since: datetime | None = None  # set when the moment falls in an edit window
    uncertain_until: datetime | None = None  # when the next version was seen: the window's end


_OBJECT = ("r.id, t.name, r.kind, r.remote_id, r.name, r.first_seen_at, r.deleted_at, r.current_version "
           "FROM resources r JOIN targets t ON t.id = r.target_id")
_VERSION = "number, content_hash, body, observed_at, remote_updated_at, origin, actor, note FROM versions"


def _object(row: tuple) -> ObjectRow:
    rid, target, kind, remote_id, name, first_seen, deleted, current = row
    return ObjectRow(rid, TargetRow(target), kind, remote_id, name, instant(first_seen), moment(deleted), current)


def _version(row: tuple) -> VersionRow:
    number, content_hash, body, observed, remote_updated, origin, actor, note = row
    return VersionRow(number, content_hash, body, instant(observed), moment(remote_updated), origin, actor, note)


def find_resource(db: Database, ref: str, *, target: str | None = None, kind: str | None = None) -> ObjectRow:
    """The object whose remote id or name is `ref` (on `target`, of `kind`, if given); RecordError if none or many."""
    query, params = f"SELECT {_OBJECT} WHERE (r.remote_id = ? OR r.name = ?)", [ref, ref]
    if target:
        query, params = query + " AND t.name = ?", [*params, target]
    if kind:
        query, params = query + " AND r.kind = ?", [*params, kind]
    return choose_resource([_object(row) for row in db.rows(query, *params)], ref, target=target, kind=kind)


def choose_resource(matches: list, ref: str, *, target: str | None = None, kind: str | None = None):
    """The one of `matches` (objects whose id or name is `ref`) that `ref` names; RecordError if none or several."""
    by_id = [r for r in matches if r.remote_id == ref]
    if len(by_id) == 1:
        return by_id[0]
    if not matches:
        where = (f" on target {target}" if target else "") + (f" of kind {kind}" if kind else "")
        raise RecordError(f"no recorded object has the id or name {ref!r}{where} "
                          "(`assistant-watcher objects` lists them)")
    if len(matches) == 1:
        return matches[0]
    where = ", ".join(f"{r.target.name}/{r.kind}/{r.remote_id}" for r in matches[:5])
    more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
    if by_id and len({r.target.name for r in by_id}) > 1:
        hint = "add --target NAME"
    elif by_id:
        hint = "the id is recorded under several kinds; add --target NAME, or give a name"
    else:
        options = [option for option, values in (("--target NAME", {r.target.name for r in matches}),
                                                 ("--kind KIND", {r.kind for r in matches})) if len(values) > 1]
        hint = f"give the id instead, or add {' and '.join(options) or '--target NAME'}"
    raise RecordError(f"{ref!r} names {len(matches)} objects ({where}{more}): {hint}")


def has_target(db: Database, name: str) -> bool:
    """True when the record has a target called `name`, configured now or not."""
    return db.first("SELECT 1 FROM targets WHERE name = ?", name) is not None


def versions(db: Database, resource: ObjectRow) -> list[VersionRow]:
    """Every version of `resource`, oldest first."""
    return [_version(row) for row in db.rows(f"SELECT {_VERSION} WHERE resource_id = ? ORDER BY number", resource.id)]


def version(db: Database, resource: ObjectRow, number: int) -> VersionRow:
    """Version `number` of `resource`, or RecordError."""
    row = db.first(f"SELECT {_VERSION} WHERE resource_id = ? AND number = ?", resource.id, number)
    if row is None:
        raise RecordError(f"{resource.remote_id} has no version {number} (it has 1..{resource.current_version})")
    return _version(row)


def version_at(db: Database, resource: ObjectRow, when: datetime) -> LiveVersion:
    """The version that was live at `when`; NotLive before the first version or while deleted
    (as `watcher.history.version_at` answers it; see `asked_span` and `live_during`)."""
    start, end = asked_span(when)
    live_from = "COALESCE(remote_updated_at, observed_at)"
    row = db.first(f"SELECT {_VERSION} WHERE resource_id = ? AND {live_from} <= ? ORDER BY number DESC LIMIT 1",
                   resource.id, db.time_param(start))
    if row is None:  # none yet at the start: the first version, if it was seen within the asked second
        row = db.first(f"SELECT {_VERSION} WHERE resource_id = ? AND {live_from} <= ? ORDER BY number LIMIT 1",
                       resource.id, db.time_param(end))
    if row is None:
        first = resource.first_seen_at
        raise NotLive(f"{resource.remote_id} was not yet recorded at {iso(when)} (first seen {iso(first)})",
                      reason="before_first_seen", since=first)
    live = _version(row)
    _refuse_if_deleted(db, resource, end)
    next_row = db.first(f"SELECT {_VERSION} WHERE resource_id = ? AND number = ? LIMIT 1", resource.id,
                        live.number + 1)
    following = _version(next_row) if next_row else None
    window = _edit_window_start(db, resource, following) if following else None
    return live_during(live, following, window, end)


def asked_span(when: datetime) -> tuple[datetime, datetime]:
    """The instants an asked time stands for: a time given to the second (as a completion's `created_at`
    is) is that whole second, any instant of which the completion may have been made at."""
    if when.microsecond == 0:
        return when, when + timedelta(microseconds=999_999)
    return when, when


def live_during(live: Any, following: Any, window_start: datetime | None, end: datetime) -> LiveVersion:
    """`live`, the version live at the asked span's start, marked uncertain when `following` may have been
    live before the span ends: its edit time is in the span, or its edit window opened before the span ends."""
    if following is None:
        return LiveVersion(live)
    edited = following.remote_updated_at
    if edited is not None:  # the edit time is known: uncertain only when the asked second contains it
        return LiveVersion(live, edited, edited) if edited <= end else LiveVersion(live)
    if window_start is None or window_start > end:
        return LiveVersion(live)
    return LiveVersion(live, window_start, following.observed_at)


def _refuse_if_deleted(db: Database, resource: ObjectRow, when: datetime) -> None:
    last = db.first("SELECT id, change, detected_at FROM events WHERE resource_id = ? "
                    "AND change IN ('deleted', 'reappeared') AND detected_at <= ? ORDER BY id DESC LIMIT 1",
                    resource.id, db.time_param(when))
    if last is None or last[1] != "deleted":
        return
    back = moment(db.scalar("SELECT detected_at FROM events WHERE resource_id = ? AND change = 'reappeared' "
                            "AND id > ? ORDER BY id", resource.id, last[0]))
    again = f" (listed again at {iso(back)})" if back else ""
    deleted = moment(last[2])
    raise NotLive(f"{resource.remote_id} was deleted at {iso(deleted)}{again}", reason="deleted",
                  since=deleted, back=back)


def _edit_window_start(db: Database, resource: ObjectRow, following: VersionRow) -> datetime | None:
    if following.remote_updated_at is not None:
        return None
    return moment(db.scalar("SELECT window_start FROM events WHERE resource_id = ? AND to_version = ?",
                            resource.id, following.number))


def list_events(db: Database, *, open_only: bool = False, since: datetime | None = None,
                target: str | None = None) -> list[EventRow]:
    """Drift events, oldest first."""
    query = ("SELECT e.id, e.change, e.from_version, e.to_version, e.paths, e.detected_at, e.window_start, "
             f"e.acked_by, e.acked_at, e.note, e.severity, e.actor, {_OBJECT} "
             "JOIN events e ON e.resource_id = r.id")
    conditions, params = [], []
    if open_only:
        conditions.append("e.acked_at IS NULL")
    if since is not None:
        conditions.append("e.detected_at >= ?")
        params.append(db.time_param(since))
    if target:
        conditions.append("t.name = ?")
        params.append(target)
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
    events = []
    for row in db.rows(query + " ORDER BY e.id", *params):
        eid, change, from_v, to_v, paths, detected, window, acked_by, acked_at, note, severity, actor = row[:12]
        events.append(EventRow(eid, _object(row[12:]), change, from_v, to_v, json_value(paths), instant(detected),
                               moment(window), acked_by, moment(acked_at), note, severity, json_value(actor)))
    return events


@dataclass(frozen=True)
class TrackedObject:
    """One recorded object as the `objects` command and the web UI list it."""

    resource_id: int
    target: str
    kind: str
    object_id: str
    name: str | None
    version: int
    deleted_at: datetime | None
    last_change_at: datetime  # COALESCE(remote_updated_at, observed_at) of the current version

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


def list_objects(db: Database, *, target: str | None = None, kind: str | tuple[str, ...] | None = None,
                 deleted: bool = False) -> list[TrackedObject]:
    """Tracked objects by target, then kind (one, or any of several), then first recorded; deleted ones only
    with `deleted`."""
    query = ("SELECT r.id, t.name, r.kind, r.remote_id, r.name, r.current_version, r.deleted_at, "
             "COALESCE(v.remote_updated_at, v.observed_at) FROM resources r JOIN targets t ON r.target_id = t.id "
             "JOIN versions v ON v.resource_id = r.id AND v.number = r.current_version")
    conditions, params = [], []
    if target:
        conditions.append("t.name = ?")
        params.append(target)
    kinds = (kind,) if isinstance(kind, str) else tuple(kind or ())
    if kinds:
        conditions.append(f"r.kind IN ({', '.join('?' * len(kinds))})")
        params.extend(kinds)
    if not deleted:
        conditions.append("r.deleted_at IS NULL")
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
    found = []
    for rid, t, k, oid, name, number, gone, changed in db.rows(query + " ORDER BY t.name, r.kind, r.id", *params):
        gone = moment(gone)
        found.append(TrackedObject(rid, t, k, oid, name, number, gone, gone or instant(changed)))
    return found
