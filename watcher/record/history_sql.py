"""One object's history read in plain SQL, for the reading commands: find it, its versions, the
version live at a time; and the drift events.

The twin of `watcher.record.history_orm` (which the web UI asks through SQLAlchemy sessions),
answered over a `watcher.record.connection.Database` so that a command that only reads starts
without SQLAlchemy. Lookup failures raise RecordError with the same one-line reasons.
"""

from __future__ import annotations

from datetime import datetime

from watcher.errors import NotLive, RecordError
from watcher.record.connection import Database, instant, json_value, moment
from watcher.record.rows import (
    EventRow,
    LiveVersion,
    ObjectRow,
    TargetRow,
    VersionRow,
    asked_span,
    choose_resource,
    live_during,
)
from watcher.times import iso

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
    (as `watcher.record.history_orm.version_at` answers it; see `asked_span` and `live_during`)."""
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
             f"e.acked_by, e.acked_at, e.note, e.severity, e.actor, e.rule, e.message, {_OBJECT} "
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
        rule, message = row[12:14]
        events.append(EventRow(eid, _object(row[14:]), change, from_v, to_v, json_value(paths), instant(detected),
                               moment(window), acked_by, moment(acked_at), note, severity, json_value(actor),
                               rule, message))
    return events
