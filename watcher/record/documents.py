"""Every JSON shape the watcher prints or serves, in one place: the CLI's `--json`, the publish
feed, webhook bodies and (later) the HTTP API. Plain functions from rows and values to dicts.

The shapes are the contract users script against (docs/json.md); change them only by adding keys.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from watcher.compare.diff import whole_body_changes
from watcher.kinds import registry
from watcher.kinds.base import EventChange
from watcher.record.schema import DeliveryState
from watcher.times import json_time

if TYPE_CHECKING:  # the shapes are read from any row with these attributes (the reading commands' plain rows too)
    from watcher.record.models import Delivery, Event, Version
    from watcher.record.rows import DeliveryRow, EventRow, VersionRow

# JSON characters of `changes` a drift document carries; past it values are cut (the record has them all).
CHANGES_BUDGET = 64 * 1024
# Characters of a cut value, and unified-diff lines kept beside it.
_CUT_VALUE = 2000
_CUT_DIFF_LINES = 200


def event_document(row: Event | EventRow) -> dict[str, Any]:
    """One drift event, as `events --json` prints it."""
    resource = row.resource
    return {
        "id": row.id,
        "target": resource.target.name,
        "kind": resource.kind,
        "object_id": resource.remote_id,
        "name": resource.name,
        "change": row.change,
        "from_version": row.from_version,
        "to_version": row.to_version,
        "paths": list(row.paths or []),
        "detected_at": json_time(row.detected_at),
        "window_start": json_time(row.window_start),
        "acked_by": row.acked_by,
        "acked_at": json_time(row.acked_at),
        "note": row.note,
        "severity": event_severity(row),
        "actor": row.actor,
        "rule": row.rule,
        "message": row.message,
    }


def event_severity(row: Event | EventRow) -> str:
    """The severity recorded with the event; for rows older than the registry, the registry's verdict now."""
    if row.severity:
        return row.severity
    if row.change in (EventChange.VIOLATION, EventChange.RESOLVED):
        return "high"
    return registry.get(row.resource.kind).severity(row.change, row.paths or [])


def version_document(row: Version | VersionRow) -> dict[str, Any]:
    """One version, as `history --json` prints it."""
    return {
        "number": row.number,
        "hash": row.content_hash,
        "observed_at": json_time(row.observed_at),
        "origin": row.origin,
        "actor": row.actor,
        "note": row.note,
    }


def outbox_document(row: Delivery | DeliveryRow, *, subject: str | None = None,
                    recipients: list[str] | None = None) -> dict[str, Any]:
    """One delivery, as `outbox --json` prints it. A pending delivery's subject and recipients are
    what it would carry if sent now (`subject`, `recipients`), as it is rendered when sent."""
    return {
        "id": row.id,
        "subject": row.subject or subject,
        "recipients": list(row.recipients if row.recipients is not None else recipients or []),
        "attempts": row.attempts,
        "sent_at": json_time(row.sent_at),
        "last_error": row.last_error,
        "message_id": row.message_id,
        "channel": row.channel,
        "state": row.state,
        "next_attempt_at": json_time(row.next_attempt_at) if row.state == DeliveryState.PENDING else None,
    }


# --- the publish feed and webhook bodies ------------------------------------------------------


def drift_document(event) -> dict[str, Any]:
    """One drift event as webhooks receive it and `events --follow --json` prints it.

    `event` is a `watcher.record.drift.DriftEvent` (or any object with its attributes). `changes` is
    bounded: past CHANGES_BUDGET characters, long values are cut (that change says
    `"truncated": true` and carries a unified diff) and `changes_truncated` is true.
    """
    changes = list(event.changes) or whole_body_changes(event.change, event.old_body, event.new_body)
    shown, truncated = bounded_changes(changes)
    return {
        "type": f"drift.{event.change}",
        "id": f"evt_{event.event_id}",
        "target": event.target,
        "kind": event.kind,
        "object_id": event.object_id,
        "name": event.name,
        "change": event.change,
        "severity": event.severity,
        "paths": list(event.paths),
        "from_version": event.from_version,
        "to_version": event.to_version,
        "detected_at": json_time(event.detected_at),
        "window_start": json_time(event.window_start),
        "remote_updated_at": json_time(event.remote_updated_at),
        "actor": event.actor,
        "changes": shown,
        "changes_truncated": truncated,
        "rule": getattr(event, "rule", None),  # a violation's or a resolved event's rule
        "message": getattr(event, "message", None),  # what a person reads: a violation's, or a notice's
    }


def notice_document(alert_id: int, type_: str, *, target: str | None, kind: str | None, severity: str,
                    created_at: datetime, message: str, error: str | None = None,
                    detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """A notice (watcher.failing, watcher.recovered, kind.retired, delivery.dead, channel.disabled)
    in the envelope of a drift document (`message` is the notice's text), with `error` and `detail` after it."""
    return {
        "type": type_,
        "id": f"ntc_{alert_id}",
        "target": target,
        "kind": kind,
        "object_id": None,
        "name": None,
        "change": None,
        "severity": severity,
        "paths": [],
        "from_version": None,
        "to_version": None,
        "detected_at": json_time(created_at),
        "window_start": None,
        "remote_updated_at": None,
        "actor": None,
        "changes": [],
        "changes_truncated": False,
        "rule": None,
        "message": message,
        "error": error,
        "detail": detail or {},
    }


def bounded_changes(changes: list, budget: int = CHANGES_BUDGET) -> tuple[list[dict[str, Any]], bool]:
    """The changes as `{path, op, old, new}` within `budget` JSON characters, and whether any was cut."""
    shown: list[dict[str, Any]] = []
    truncated = False
    for change in changes:
        item = change.as_json()
        cost = _size(item)
        if cost > budget:
            item, truncated = _cut(change), True
            cost = _size(item)
        if cost > budget:
            return shown, True  # not even the cut form fits: the rest is behind `paths`
        shown.append(item)
        budget -= cost
    return shown, truncated


def _cut(change) -> dict[str, Any]:
    """A change whose values are too long: each cut to its start, with the line diff beside them."""
    item = {"path": change.path, "op": change.op, "old": _cut_value(change.old), "new": _cut_value(change.new),
            "truncated": True}
    if change.text_diff:
        lines = change.text_diff[:_CUT_DIFF_LINES]
        item["diff"] = [line[:_CUT_VALUE] for line in lines]
    return item


def _cut_value(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= _CUT_VALUE else value[:_CUT_VALUE] + "…"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value if len(text) <= _CUT_VALUE else text[:_CUT_VALUE] + "…"


def _size(item: dict[str, Any]) -> int:
    return len(json.dumps(item, ensure_ascii=False))

def object_document(row) -> dict[str, Any]:
    """One tracked object (a `watcher.record.rows.TrackedObject`), as `objects --json` prints it."""
    return {
        "target": row.target,
        "kind": row.kind,
        "object_id": row.object_id,
        "name": row.name,
        "version": row.version,
        "deleted": row.deleted,
        "last_change_at": json_time(row.last_change_at),
    }


def rules_document(rules: list[dict[str, Any]], breaking) -> list[dict[str, Any]]:
    """`rules --json`: each rule ({name, kinds, expression, severity}) with the objects that break it now
    (`watcher.record.rows.Breaking`)."""
    return [{**{key: rule[key] for key in ("name", "kinds", "expression", "severity")},
             "breaking": [{"target": b.target, "kind": b.kind, "object_id": b.object_id, "name": b.name,
                           "version": b.version, "message": b.message} for b in breaking if b.rule == rule["name"]]}
            for rule in rules]


def status_document(statuses, deliveries, states=(), fighting=()) -> dict[str, Any]:
    """`status --json`: the last poll of every target and kind, open events, deliveries waiting, and the
    objects the platform holds in an alarming state.

    `statuses` are `watcher.record.rows.KindStatus`, `deliveries` `watcher.record.rows.Deliveries`, `states`
    `watcher.record.rows.PlatformState`. Each poll row also says how many of its events are open.
    """
    statuses = list(statuses)
    return {
        "polls": [{
            "target": row.target,
            "kind": row.kind,
            "status": row.status,
            "finished_at": json_time(row.finished_at),
            "objects": row.objects,
            "error": row.error,
            "open_events": row.open_events,
            "worker": row.worker,
            "enabled": row.enabled,
        } for row in statuses],
        "open_events": sum(row.open_events for row in statuses),
        "deliveries": {"pending": sum(d.pending for d in deliveries), "dead": sum(d.dead for d in deliveries)},
        "platform_state": [{"target": row.target, "kind": row.kind, "object_id": row.object_id, "name": row.name,
                            "state": row.state} for row in states],
        "fighting": [{"target": f.target, "kind": f.kind, "object_id": f.object_id, "name": f.name,
                      "since": json_time(f.since)} for f in fighting],
    }


def live_version_document(live) -> dict[str, Any]:
    """The version live at a time (a `watcher.record.history_orm.LiveVersion`): what an application stamps.

    `edit_window` is null, or says that the next version was edited in at some time inside
    it and the asked time falls there: either version may have been live.
    """
    row = live.version
    window = None
    if live.uncertain_since is not None:
        window = {"from": json_time(live.uncertain_since), "to": json_time(live.uncertain_until),
                  "next_version": row.number + 1}
    return {
        "number": row.number,
        "hash": row.content_hash,
        "observed_at": json_time(row.observed_at),
        "origin": row.origin,
        "actor": row.actor,
        "edit_window": window,
    }
