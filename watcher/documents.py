"""Every JSON shape the watcher prints or serves, in one place: the CLI's `--json`, and later
the publish feed, webhook bodies and the HTTP API. Plain functions from rows to dicts.

The shapes are the contract users script against (docs/json.md); change them only by adding keys.
"""

from __future__ import annotations

from typing import Any

from watcher import kinds
from watcher.history import json_time
from watcher.store import Event, OutboxMessage, Version


def event_document(row: Event) -> dict[str, Any]:
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
    }


def event_severity(row: Event) -> str:
    """The severity recorded with the event; for rows older than the registry, the registry's verdict now."""
    if row.severity:
        return row.severity
    return kinds.get(row.resource.kind).severity(row.change, row.paths or [])


def version_document(row: Version) -> dict[str, Any]:
    """One version, as `history --json` prints it."""
    return {
        "number": row.number,
        "hash": row.content_hash,
        "observed_at": json_time(row.observed_at),
        "origin": row.origin,
        "actor": row.actor,
        "note": row.note,
    }


def outbox_document(row: OutboxMessage) -> dict[str, Any]:
    """One outbox row, as `outbox --json` prints it."""
    return {
        "id": row.id,
        "subject": row.subject,
        "recipients": list(row.recipients),
        "attempts": row.attempts,
        "sent_at": json_time(row.sent_at),
        "last_error": row.last_error,
        "message_id": row.message_id,
    }


def object_document(row) -> dict[str, Any]:
    """One tracked object (a `watcher.overview.TrackedObject`), as `objects --json` prints it."""
    return {
        "target": row.target,
        "kind": row.kind,
        "object_id": row.object_id,
        "name": row.name,
        "version": row.version,
        "deleted": row.deleted,
        "last_change_at": json_time(row.last_change_at),
    }


def status_document(statuses, deliveries) -> dict[str, Any]:
    """`status --json`: the last poll of every target and kind, open events, deliveries waiting.

    `statuses` are `watcher.overview.KindStatus`, `deliveries` `watcher.overview.Deliveries`.
    Each poll row also says how many of its events are open (the overview's column).
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
        } for row in statuses],
        "open_events": sum(row.open_events for row in statuses),
        "deliveries": {"pending": sum(d.pending for d in deliveries), "dead": sum(d.dead for d in deliveries)},
    }


def live_version_document(live) -> dict[str, Any]:
    """The version live at a time (a `watcher.history.LiveVersion`): what an application stamps.

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
