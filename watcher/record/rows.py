"""The record's rows as plain values, and the rules that read them, shared by both ways of reading it.

The reading commands read the record in plain SQL (`history_sql`, `overview_sql`), the web UI and
the daemon through SQLAlchemy (`history_orm`, `overview_orm`): each pair answers the same questions
with these rows (or models with the same attribute names), so `watcher.record.documents` shapes
both alike and a page never disagrees with a command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from watcher.errors import RecordError
from watcher.kinds import registry
from watcher.kinds.base import Severity


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
    rule: str | None = None  # violation | resolved: the rule's name
    message: str | None = None  # violation: what the rule says is wrong


@dataclass(frozen=True)
class LiveVersion:
    """The version live at a moment, and how sure the record is of it.

    When the moment falls in an edit window (the next version was edited in at some time between
    two polls, `uncertain_since` .. `uncertain_until`), either this version or the next was live.
    """

    version: Any
    uncertain_since: datetime | None = None  # set when the moment falls in an edit window
    uncertain_until: datetime | None = None  # when the next version was seen: the window's end


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


@dataclass(frozen=True)
class KindStatus:
    """How one (target, kind) is doing: its last poll, the objects it tracks, the events left open."""

    target: str
    kind: str
    status: str | None  # complete | failed | not_served; None: never polled
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    objects: int | None  # tracked and not deleted (None: not counted)
    open_events: int | None  # None: not counted
    last_complete_at: datetime | None
    worker: str | None = None  # the process (host:pid:random) that did the last poll
    enabled: bool = True  # False: configured with enabled = false, not polled

    @property
    def duration(self) -> float | None:
        """Seconds the last poll took."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max((self.finished_at - self.started_at).total_seconds(), 0.0)


@dataclass(frozen=True)
class Breaking:
    """A live object whose current version breaks a rule: its last rule event is a violation."""

    rule: str
    target: str
    kind: str
    object_id: str
    name: str | None
    version: int | None
    message: str | None


@dataclass(frozen=True)
class Fighting:
    """An object self-heal left alone because something keeps changing it (a `fighting` notice newer than the
    watcher's last write of it)."""

    target: str
    kind: str
    object_id: str
    name: str | None
    since: datetime


def fighting_from(notices, writes) -> list[Fighting]:
    """From (target, kind, object id, name, notice time) of `fighting` notices and {(target, kind, object id):
    time of the watcher's last write (heal, apply, restore)}: the objects still fighting, sorted."""
    latest: dict[tuple[str, str, str], Fighting] = {}
    for target, kind, object_id, name, at in notices:
        key = (target, kind, object_id)
        if key not in latest or at > latest[key].since:
            latest[key] = Fighting(target, kind, object_id, name, at)
    return sorted((f for key, f in latest.items() if writes.get(key) is None or writes[key] < f.since),
                  key=lambda f: (f.target, f.kind, f.object_id))


@dataclass(frozen=True)
class PlatformState:
    """An object the platform holds in an alarming state (a spend limit enforcing, a paused automation)."""

    target: str
    kind: str
    object_id: str
    name: str | None
    state: dict[str, Any]


def breaking_from(rows) -> list[Breaking]:
    """From (rule, target, kind, object id, name, version, message, change) rows in event order: the objects
    whose last event of each rule is a violation, sorted by rule and object."""
    last: dict[tuple[str, str, str, str], tuple] = {}
    for row in rows:
        last[(row[0], row[1], row[2], row[3])] = tuple(row)
    return sorted((Breaking(*row[:7]) for row in last.values() if row[7] == "violation"),
                  key=lambda b: (b.rule, b.target, b.kind, b.object_id))


def alarming(kind: str, state: Any) -> bool:
    """True for a state (path: value) its kind calls an alarm (`Kind.state_alarms`); False for a kind this
    version no longer knows."""
    if not isinstance(state, dict) or not state or kind not in registry.names():
        return False
    return registry.get(kind).state_severity(state) == Severity.HIGH


@dataclass(frozen=True)
class Deliveries:
    """Outbox figures per channel: rows pending, sent and dead, and failed attempts."""

    channel: str
    pending: int = 0
    sent: int = 0
    dead: int = 0
    failed_attempts: int = 0


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
