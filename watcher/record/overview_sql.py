"""The whole record read in plain SQL, for the reading commands: the objects tracked, how each target
and kind is doing, and the outbox.

The twin of `watcher.record.overview_orm` (and of `watcher.alerts.outbox.rows`), which the web UI
and the daemon ask through SQLAlchemy; over a `watcher.record.connection.Database`, so that these
commands start without SQLAlchemy. Rows are `watcher.record.rows`'.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from watcher.kinds import registry
from watcher.record.connection import Database, instant, json_value, moment
from watcher.record.rows import (
    AlertRow,
    Breaking,
    Deliveries,
    DeliveryRow,
    Fighting,
    KindStatus,
    PlatformState,
    TrackedObject,
    alarming,
    breaking_from,
    fighting_from,
)
from watcher.record.schema import DeliveryState


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


def kind_statuses(db: Database, expected: list[tuple[str, str]], disabled: set[str] | frozenset[str] = frozenset(),
                  ) -> list[KindStatus]:
    """Every (target, kind) that was polled or has objects, plus the `expected` ones (configured, maybe
    never polled yet), sorted by target then kind; rows of the `disabled` targets say so."""
    names = list(dict.fromkeys([*registry.names(), *(kind for _target, kind in expected)]))
    latest = _latest_polls(db, names)
    objects = _counts(db, "SELECT target_id, kind, COUNT(*) FROM resources WHERE deleted_at IS NULL "
                          "GROUP BY target_id, kind")
    # Counted per object first (one pass over the open events' index), then summed per pair.
    open_events = _counts(db, "SELECT r.target_id, r.kind, SUM(o.n) FROM resources r JOIN "
                              "(SELECT resource_id, COUNT(*) AS n FROM events WHERE acked_at IS NULL "
                              "GROUP BY resource_id) o ON o.resource_id = r.id GROUP BY r.target_id, r.kind")
    targets = dict(db.rows("SELECT id, name FROM targets"))
    pairs = {(targets[t], k) for t, k in (*latest, *objects, *open_events)} | set(expected)
    ids = {name: target_id for target_id, name in targets.items()}
    rows = []
    for target, kind in sorted(pairs):
        key = (ids.get(target, 0), kind)  # 0 matches no row: a configured target not polled yet has none
        last, complete = latest.get(key, (None, None))
        rows.append(KindStatus(
            target=target, kind=kind, status=last[0] if last else None, started_at=last[1] if last else None,
            finished_at=last[2] if last else None, error=last[3] if last else None, objects=objects.get(key, 0),
            open_events=open_events.get(key, 0), last_complete_at=complete, worker=last[4] if last else None,
            enabled=target not in disabled,
        ))
    return rows


_LastPoll = tuple[str, datetime, datetime | None, str | None, str | None]  # status, started, finished, error, worker


def _latest_polls(db: Database, names: list[str]) -> dict[tuple[int, str], tuple[_LastPoll, datetime | None]]:
    """(target id, kind) → (its last poll, when its last complete poll finished), by one index probe per pair."""
    if not names:
        return {}
    # A one-value range and ORDER BY kind[, status], id keep PostgreSQL on the (target, kind[, status], id)
    # index (with an equality it walks the primary key backwards; see overview_orm._latest_polls).
    kind_names = " UNION ALL ".join("SELECT ? AS kind" for _ in names)
    found = db.rows("SELECT (SELECT p.id FROM polls p WHERE p.target_id = t.id AND p.kind BETWEEN k.kind AND k.kind "
                    "ORDER BY p.kind DESC, p.id DESC LIMIT 1), "
                    "(SELECT p.id FROM polls p WHERE p.target_id = t.id AND p.kind = k.kind "
                    "AND p.status BETWEEN 'complete' AND 'complete' ORDER BY p.status DESC, p.id DESC LIMIT 1) "
                    f"FROM targets t CROSS JOIN ({kind_names}) k", *names)
    wanted = {poll_id for row in found for poll_id in row if poll_id is not None}
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    polls = {poll_id: (target_id, kind, (status, instant(started), moment(finished), error, worker))
             for poll_id, target_id, kind, status, started, finished, error, worker
             in db.rows("SELECT id, target_id, kind, status, started_at, finished_at, error, worker FROM polls "
                        f"WHERE id IN ({marks})", *wanted)}
    result = {}
    for last_id, complete_id in found:
        if last_id is None:
            continue
        target_id, kind, last = polls[last_id]
        result[(target_id, kind)] = (last, polls[complete_id][2][2] if complete_id else None)
    return result


def _counts(db: Database, query: str) -> dict[tuple[int, str], int]:
    return {(target_id, kind): int(count) for target_id, kind, count in db.rows(query)}


_LAST_RULE_EVENTS = ("SELECT e.rule, t.name, r.kind, r.remote_id, r.name, e.to_version, e.message, e.change "
                     "FROM events e JOIN resources r ON r.id = e.resource_id JOIN targets t ON t.id = r.target_id "
                     "WHERE e.change IN ('violation', 'resolved') AND r.deleted_at IS NULL ORDER BY e.id")


def breaking(db: Database) -> list[Breaking]:
    """The live objects whose last event of a rule is a violation, rule by rule."""
    return breaking_from(db.rows(_LAST_RULE_EVENTS))


def fighting(db: Database) -> list[Fighting]:
    """The objects self-heal left alone and nobody has written since (see `watcher.record.rows.fighting_from`)."""
    notices = []
    for target, kind, detail, created in db.rows("SELECT t.name, a.kind, a.detail, a.created_at FROM alerts a "
                                                 "JOIN targets t ON t.id = a.target_id WHERE a.purpose = 'fighting'"):
        detail = json_value(detail) or {}
        notices.append((target, kind, str(detail.get("object_id", "")), detail.get("name"), instant(created)))
    writes = {(target, kind, object_id): instant(at) for target, kind, object_id, at in db.rows(
        "SELECT t.name, r.kind, r.remote_id, MAX(v.observed_at) FROM versions v "
        "JOIN resources r ON r.id = v.resource_id JOIN targets t ON t.id = r.target_id "
        "WHERE v.origin IN ('heal', 'apply', 'restore') "
        "GROUP BY t.name, r.kind, r.remote_id")}
    return fighting_from(notices, writes)


def platform_states(db: Database) -> list[PlatformState]:
    """The live objects the platform holds in an alarming state (see `watcher.record.rows.alarming`)."""
    rows = db.rows("SELECT t.name, r.kind, r.remote_id, r.name, r.state FROM resources r "
                   "JOIN targets t ON t.id = r.target_id WHERE r.state IS NOT NULL AND r.deleted_at IS NULL "
                   "ORDER BY t.name, r.kind, r.remote_id")
    found = [PlatformState(target, kind, object_id, name, json_value(state))
             for target, kind, object_id, name, state in rows]
    return [row for row in found if alarming(row.kind, row.state)]


def deliveries(db: Database) -> list[Deliveries]:
    """One entry per channel that has outbox rows: pending, sent and dead, and failed attempts."""
    figures: dict[str, dict[str, int]] = {}
    for name, state, count, attempts in db.rows("SELECT channel, state, COUNT(*), COALESCE(SUM(attempts), 0) "
                                                "FROM outbox GROUP BY channel, state"):
        entry = figures.setdefault(name, {"pending": 0, "sent": 0, "dead": 0, "failed_attempts": 0})
        entry[state] += int(count)
        # Every try counts one attempt; a sent row's last one succeeded.
        entry["failed_attempts"] += int(attempts) - (int(count) if state == DeliveryState.SENT else 0)
    return [Deliveries(name, **entry) for name, entry in sorted(figures.items())]


# --- the outbox ----------------------------------------------------------------------------------


_DELIVERY = ("SELECT d.id, d.channel, d.state, d.message_id, d.recipients, d.subject, d.attempts, d.next_attempt_at, "
             "d.sent_at, d.last_error, d.alert_id, a.title, a.routing "
             "FROM outbox d LEFT JOIN alerts a ON a.id = d.alert_id")


def outbox_rows(db: Database, limit: int) -> list[DeliveryRow]:
    """Every pending delivery (oldest first), then the `limit` most recently sent or dead."""
    pending = db.rows(f"{_DELIVERY} WHERE d.state = 'pending' ORDER BY d.id")
    done = db.rows(f"{_DELIVERY} WHERE d.state != 'pending' ORDER BY COALESCE(d.sent_at, d.dead_at) DESC, d.id DESC "
                   "LIMIT ?", limit)
    return [_delivery(row) for row in (*pending, *done)]


def _delivery(row: tuple[Any, ...]) -> DeliveryRow:
    rid, channel, state, message_id, recipients, subject, attempts, next_at, sent, error, alert_id, title, routing = row
    alert = AlertRow(title, json_value(routing)) if alert_id is not None else None
    return DeliveryRow(rid, channel, state, message_id, json_value(recipients), subject, attempts, moment(next_at),
                       moment(sent), error, alert)


def held_channels(db: Database) -> set[str]:
    """The channels disabled by a 410 (their deliveries wait)."""
    return {name for (name,) in db.rows("SELECT name FROM channel_states")}
