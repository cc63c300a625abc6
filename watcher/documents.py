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
