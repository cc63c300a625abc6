"""How each target and kind is doing, and the outbox, read in plain SQL for `status` and `outbox`.

The same answers as `watcher.overview.kind_statuses` / `deliveries` and `watcher.outbox.rows` (which
the web UI and the daemon ask through SQLAlchemy), over a `watcher.sql.Database`, so that these
commands start without SQLAlchemy. Rows carry the attribute names `watcher.documents` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcher.sql import Database, json_value, moment


@dataclass(frozen=True)
class KindStatus:
    """How one (target, kind) is doing: its last poll, the objects it tracks, the events left open."""

    target: str
    kind: str
    status: str | None  # complete | failed | not_served; None: never polled
    finished_at: datetime | None
    error: str | None
    objects: int
    open_events: int
    worker: str | None = None  # the process (host:pid:random) that did the last poll
    enabled: bool = True  # False: configured with enabled = false, not polled


@dataclass(frozen=True)
class Waiting:
    """Deliveries of every channel still pending, and given up."""

    pending: int
    dead: int


def kind_statuses(db: Database, expected: list[tuple[str, str]], disabled: set[str] | frozenset[str] = frozenset(),
                  ) -> list[KindStatus]:
    """Every (target, kind) that was polled or has objects, plus the `expected` ones (configured, maybe
    never polled yet), sorted by target then kind; rows of the `disabled` targets say so."""
    from watcher.kinds import registry

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
        status, finished, error, worker = latest.get(key, (None, None, None, None))
        rows.append(KindStatus(target, kind, status, finished, error, objects.get(key, 0), open_events.get(key, 0),
                               worker, target not in disabled))
    return rows


def _latest_polls(db: Database, names: list[str],
                  ) -> dict[tuple[int, str], tuple[str, datetime | None, str | None, str | None]]:
    """(target id, kind) → (status, finished_at, error, worker) of its last poll, by one index probe per pair."""
    if not names:
        return {}
    # A one-value range and ORDER BY kind, id keep PostgreSQL on the (target, kind, id) index
    # (with an equality it walks the primary key backwards; see watcher.overview._latest_polls).
    kind_names = " UNION ALL ".join("SELECT ? AS kind" for _ in names)
    found = db.rows(f"SELECT (SELECT p.id FROM polls p WHERE p.target_id = t.id AND p.kind BETWEEN k.kind AND k.kind "
                    "ORDER BY p.kind DESC, p.id DESC LIMIT 1) FROM targets t CROSS JOIN "
                    f"({kind_names}) k", *names)
    wanted = [poll_id for (poll_id,) in found if poll_id is not None]
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    return {(target_id, kind): (status, moment(finished), error, worker)
            for target_id, kind, status, finished, error, worker
            in db.rows(f"SELECT target_id, kind, status, finished_at, error, worker FROM polls WHERE id IN ({marks})",
                       *wanted)}


def _counts(db: Database, query: str) -> dict[tuple[int, str], int]:
    return {(target_id, kind): int(count) for target_id, kind, count in db.rows(query)}


def waiting(db: Database) -> list[Waiting]:
    """The outbox's pending and dead deliveries, over every channel (one entry)."""
    counts = dict(db.rows("SELECT state, COUNT(*) FROM outbox WHERE state IN ('pending', 'dead') GROUP BY state"))
    return [Waiting(int(counts.get("pending", 0)), int(counts.get("dead", 0)))]


# --- the outbox ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    title: str
    routing: list[dict[str, str]] | None


@dataclass(frozen=True)
class DeliveryRow:
    """One outbox row with its alert's title and routing (what a preview of a pending delivery needs)."""

    id: int
    channel: str
    state: str
    message_id: str
    recipients: list[str] | None
    subject: str | None
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None
    alert: AlertRow | None


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
