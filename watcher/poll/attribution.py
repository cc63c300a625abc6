"""Who changed it: the organization audit log names the actor of drift on organization kinds.

After a poll of (target, kind) commits, `attribute` reads the audit log
(`/v1/organization/audit_logs`, admin key) for the events of that kind still without an
actor, and fills each one's `actor` from the entry that names its change: an entry of one of
the kind's audit event types, whose payload `id` is the object (and whose project is the
object's, where the id repeats across projects: rate limits are named after their model),
whose verb fits the change (created: created/added/sent), with an `effective_at` inside the
event's window (the previous poll's start .. detection), and not already another event's
actor for that object. The latest such entry wins: it made the state the poll saw.

An entry that reaches the log late fills the actor on a later poll: events wait for one for
LOOKBACK after they were detected. Each run reads only the window of the events still waiting,
filtered by their ids and the kind's event types, at most MAX_REQUESTS pages of `has_more` +
`last_id`. It runs after the poll's commit, in its own short transaction, and never raises: a
failure is one log line, and the events keep waiting.

Alerts are rendered when a channel delivers them, from the record (`watcher.alerts.stored.load`), so
an alert still pending when the actor arrives carries it; `events`, `events --json` and the
API read it from the record whenever it arrives.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from watcher.display import counted
from watcher.errors import SourceError, one_line
from watcher.kinds.base import IN_PROJECT, ORGANIZATION_WIDE, EventChange, Kind
from watcher.kinds.organization import AUDIT_LOG
from watcher.record.models import Event, Resource, Target, rows_updated
from watcher.times import as_datetime, json_time, utcnow

if TYPE_CHECKING:
    from watcher.source.listing import Source

log = logging.getLogger("watcher.attribution")

LOOKBACK = timedelta(days=1)  # how long an event waits for a late audit entry
SKEW = timedelta(seconds=2)  # the audit log counts whole seconds; clocks (NTP) differ a little
MAX_WAITING = 500  # events of one (target, kind) looked up per run, newest first
IDS_PER_REQUEST = 50  # resource ids in one request's filter (the URL stays short)
MAX_REQUESTS = 20  # audit log pages read per run
BUDGET = 60.0  # seconds one run may take, all requests included
SOURCE = "audit_log"
_IN_CHUNK = 500  # ids in one SQL IN (...)
_CREATING = ("created", "added", "sent")  # the verbs of an entry that makes an object
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Waiting:
    """A drift event without an actor yet, as plain values."""

    event_id: int
    resource_id: int
    object_id: str
    change: str
    window_start: datetime | None
    detected_at: datetime


# --- the edge: one run after a poll -------------------------------------------------------------


def attribute(engine: Engine, source: Source, target: str, kind: Kind) -> dict[int, dict[str, Any]]:
    """Fill the actor of (target, kind)'s waiting events from the audit log; {event id: actor} it filled.

    Never raises: a failure is logged in one line and the events wait for the next poll.
    """
    if not kind.audit_types or not source.target.has_admin_key:
        return {}
    try:
        waiting, used = _waiting(engine, target, kind)
        if not waiting:
            return {}
        source.deadline = time.monotonic() + BUDGET
        found = match(kind, waiting, _read(source, kind, waiting), used)
        stored = _store(engine, found)
    except SourceError as exc:  # already one line, without any key
        log.warning("%s/%s: who made the changes is not known yet: the audit log could not be read: %s",
                    target, kind.name, exc)
        return {}
    except Exception as exc:  # a database refusal or a bug must never cost the poll anything either
        log.warning("%s/%s: who made the changes is not known yet: %s: %s", target, kind.name,
                    type(exc).__name__, one_line(exc, 300))
        return {}
    if stored:
        log.info("%s/%s: the audit log names who made %s", target, kind.name, counted(len(stored), "change"))
    return stored


def _waiting(engine: Engine, target: str, kind: Kind) -> tuple[list[Waiting], dict[int, set[str]]]:
    """The recent events still without an actor, and the audit entries other events of their objects used."""
    since = utcnow() - LOOKBACK
    with Session(engine) as session:
        rows = session.execute(
            select(Event.id, Event.resource_id, Resource.remote_id, Event.change, Event.window_start,
                   Event.detected_at)
            .join(Resource, Event.resource_id == Resource.id).join(Target, Resource.target_id == Target.id)
            .where(Target.name == target, Resource.kind == kind.name, Event.actor.is_(None),
                   Event.detected_at >= since)
            .order_by(Event.id.desc()).limit(MAX_WAITING)).all()
        waiting = [Waiting(*row) for row in rows]
        used: dict[int, set[str]] = {}
        resources = sorted({w.resource_id for w in waiting})
        for start in range(0, len(resources), _IN_CHUNK):
            chunk = resources[start:start + _IN_CHUNK]
            for resource_id, actor in session.execute(select(Event.resource_id, Event.actor).where(
                    Event.resource_id.in_(chunk), Event.actor.is_not(None))):
                if isinstance(actor, dict) and actor.get("audit_event_id"):
                    used.setdefault(resource_id, set()).add(actor["audit_event_id"])
    return waiting, used


def _read(source: Source, kind: Kind, waiting: list[Waiting]) -> list[dict[str, Any]]:
    """The audit log entries of the waiting events' window that may name them (bounded requests)."""
    since = min(_window_start(w) for w in waiting) - SKEW
    ids = sorted({kind.audit_address(w.object_id)[0] for w in waiting})
    entries: list[dict[str, Any]] = []
    requests = 0
    for start in range(0, len(ids), IDS_PER_REQUEST):
        params = {"effective_at": {"gte": int(since.timestamp())}, "resource_ids": ids[start:start + IDS_PER_REQUEST],
                  "event_types": list(kind.audit_types)}
        for page in source.filtered_pages(AUDIT_LOG, params):
            entries += page.objects
            requests += 1
            if requests >= MAX_REQUESTS:
                log.info("%s/%s: read %d pages of the audit log, its limit for one poll; the rest waits",
                         source.target.name, kind.name, requests)
                return entries
    return entries


def _store(engine: Engine, found: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Write each actor unless another process wrote one first; the ones written."""
    stored = {}
    with Session(engine) as session, session.begin():
        for event_id, actor in found.items():
            written = rows_updated(session, update(Event).where(Event.id == event_id, Event.actor.is_(None))
                                   .values(actor=actor))
            if written:
                stored[event_id] = actor
    return stored


# --- the core: which entry names which event (plain values, no I/O) --------------------------------


def match(kind: Kind, waiting: Iterable[Waiting], entries: list[dict[str, Any]],
          used: dict[int, set[str]]) -> dict[int, dict[str, Any]]:
    """{event id: actor} for every waiting event an entry names; each entry serves one event of an object.

    Newest events choose first: the latest entry in an object's newest window made its newest change.
    """
    by_resource = _by_resource(kind, entries)
    taken = {resource_id: set(ids) for resource_id, ids in used.items()}
    found = {}
    for event in sorted(waiting, key=lambda w: w.event_id, reverse=True):
        mine = taken.setdefault(event.resource_id, set())
        entry = choose(kind, event, by_resource.get(kind.audit_address(event.object_id), ()), mine)
        actor = actor_of(entry) if entry is not None else None
        if actor is not None:
            found[event.event_id] = actor
            mine.add(actor["audit_event_id"])
    return found


@dataclass(frozen=True)
class _Candidate:
    """An entry of one of the kind's types, read once: when, its id, and the entry."""

    at: int
    entry_id: str
    entry: dict[str, Any]


def _by_resource(kind: Kind, entries: Iterable[dict[str, Any]]) -> dict[tuple[str, str | None], list[_Candidate]]:
    """The usable entries by the (resource id, project) they name, as `Kind.audit_address` gives them."""
    grouped: dict[tuple[str, str | None], list[_Candidate]] = {}
    for entry in entries:
        event_type, at, entry_id = entry.get("type"), _effective_at(entry), _text(entry.get("id"))
        if event_type not in kind.audit_types or at is None or entry_id is None:
            continue
        payload = entry.get(event_type)
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            continue
        where = _object(entry.get("project")).get("id")
        if kind.audit_scope == ORGANIZATION_WIDE and where is not None:
            continue  # an organization member is not named by an entry about a project's membership
        project = where if kind.audit_scope == IN_PROJECT and isinstance(where, str) else None
        if kind.audit_scope == IN_PROJECT and project is None:
            continue
        grouped.setdefault((payload["id"], project), []).append(_Candidate(at, entry_id, entry))
    return grouped


def choose(kind: Kind, event: Waiting, candidates: Iterable[_Candidate], used: set[str]) -> dict[str, Any] | None:
    """The latest of an object's entries that fits the event's change, inside its window, not used by another."""
    low = int((_window_start(event) - SKEW).timestamp())
    high = int((event.detected_at + SKEW).timestamp())
    best: _Candidate | None = None
    for candidate in candidates:
        if not low <= candidate.at <= high or candidate.entry_id in used:
            continue
        if not _fits(candidate.entry["type"], event.change):
            continue
        if best is None or candidate.at > best.at:
            best = candidate
    return best.entry if best else None


def _fits(event_type: str, change: str) -> bool:
    """An entry that makes an object explains its creation; any other explains a modification or deletion."""
    creating = event_type.rsplit(".", 1)[-1] in _CREATING
    return creating if change == EventChange.CREATED else not creating


def actor_of(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The event's `actor` from an audit log entry, or None when it names nobody (remote text is bounded)."""
    actor = entry.get("actor")
    if not isinstance(actor, dict):
        return None
    session, key = _object(actor.get("session")), _object(actor.get("api_key"))
    if actor.get("type") == "session" or (session and not key):
        user = _object(session.get("user"))
        who = {"type": "user", "id": _text(user.get("id")), "email": _text(user.get("email")),
               "ip": _text(session.get("ip_address"), 64)}
    elif key.get("type") == "service_account":
        who = {"type": "service_account", "id": _text(_object(key.get("service_account")).get("id")),
               "email": None, "ip": None}
    elif key:
        who = {"type": "api_key", "id": _text(key.get("id")), "email": _text(_object(key.get("user")).get("email")),
               "ip": None}
    else:
        return None
    entry_id = _text(entry.get("id"))
    if not (who["id"] or who["email"]) or not entry_id:
        return None
    return {**who, "source": SOURCE, "audit_event_id": entry_id, "at": json_time(as_datetime(_effective_at(entry)))}


def _window_start(event: Waiting) -> datetime:
    return event.window_start or event.detected_at - LOOKBACK


def _effective_at(entry: dict[str, Any]) -> int | None:
    at = entry.get("effective_at")
    return at if isinstance(at, int) and not isinstance(at, bool) else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, limit: int = 320) -> str | None:
    """A remote string fit for the record: one line, bounded; None for anything else."""
    if not isinstance(value, str):
        return None
    value = _CONTROL.sub("", value).strip()
    return value[:limit] or None
