"""A drift event as the pipeline hands it on: recorded by a poll, composed into alerts, rendered,
published. A plain value, keyword-only (two adjacent times must never be swapped by position)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watcher.compare.diff import Change


@dataclass(kw_only=True)
class DriftEvent:
    """One recorded drift event with everything an alert needs to describe it."""

    event_id: int
    target: str
    kind: str
    object_id: str
    name: str | None
    change: str  # created | modified | deleted | reappeared
    from_version: int | None
    to_version: int | None
    paths: list[str]
    changes: list[Change] = field(default_factory=list)
    detected_at: datetime
    window_start: datetime | None  # the previous complete poll: the edit happened after it
    remote_updated_at: datetime | None  # the object's own updated_at, where its kind has one
    old_body: dict[str, Any] | None = None
    new_body: dict[str, Any] | None = None
    severity: str = "low"  # high | low, from the kind registry
    actor: dict[str, Any] | None = None  # who made the change, when a source knows
    rule: str | None = None  # violation | resolved: the rule's name
    message: str | None = None  # violation: what the rule says is wrong, or why it cannot be evaluated
