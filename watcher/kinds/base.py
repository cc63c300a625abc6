"""What a kind is.

A kind is everything the watcher knows about one sort of remote object: its config
name and label, the path it is listed at and how (cursor pages; pages under each
parent object; one object composed per parent), which key reads it, which fields
change by use rather than by people (ignored by default), which paths make a change
`high`, which field names an object and which fields `apply`/`restore` may write.
Nothing outside `watcher.kinds` tests a kind's name: it asks the registry (`watcher.kinds.registry`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from watcher.kinds.paths import WILDCARD, parse_path

PROJECT, ADMIN = "project", "admin"
# How a kind is listed.
PAGES = "pages"  # cursor pages at `path`
PER_PARENT = "per_parent"  # cursor pages at `path` for each object of `parent`
SINGLETON_PER_PARENT = "singleton_per_parent"  # one object per parent, composed from `parts`
# Where the next page's `after` comes from: the last object's id, or the page's `last_id` or `next`.
AFTER_LAST_OBJECT, AFTER_LAST_ID, AFTER_NEXT = "id", "last_id", "next"
# Which audit log entries can name a kind's objects (see `Kind.audit_scope`).
IN_PROJECT, ORGANIZATION_WIDE, ANYWHERE = "project", "organization", "any"


class Severity(StrEnum):
    """How loud a drift event is: a kind decides it from what changed (`Kind.severity`)."""

    HIGH = "high"
    LOW = "low"


class EventChange(StrEnum):
    """What an event records of an object (`events.change`): what happened to it between two complete listings."""

    CREATED = "created"
    MODIFIED = "modified"
    DELETED = "deleted"
    REAPPEARED = "reappeared"
    VIOLATION = "violation"  # a version breaks a rule ([[rules]]): not drift, and checked on the baseline too
    RESOLVED = "resolved"  # the first later version that satisfies it again


@dataclass(frozen=True)
class Kind:
    """One sort of remote object (see the module docstring)."""

    name: str
    label: str
    path: str
    key: str = PROJECT
    beta: str | None = None  # the OpenAI-Beta header its endpoints want
    listing: str = PAGES
    parent: str | None = None  # the kind listed first, whose ids fill `{parent}` in `path`
    parts: tuple[tuple[str, str], ...] = ()  # SINGLETON_PER_PARENT: (field, path) read into one object
    ordered: bool = True  # the list endpoint takes order=asc
    cursor: str = AFTER_LAST_OBJECT  # where the next page's `after` comes from
    params: Mapping[str, str] = field(default_factory=dict)  # sent with every list request
    optional_parts: tuple[str, ...] = ()  # SINGLETON_PER_PARENT parts whose 404 means "none set"
    id_field: str = "id"  # the field that identifies an object under its parent
    name_field: str = "name"
    named_under_parent: bool = False  # labelled "<parent's name> / <its own>": its name repeats across parents
    volatile: tuple[str, ...] = ("updated_at",)  # changed by use, not by people: never drift
    # Set by the platform, not by people (a spend limit enforcing): never drift, kept as the object's state.
    state: tuple[str, ...] = ()
    # (path, while, reads_as): while `while` is set, `path` is the platform's too (kept in the state) and the
    # body keeps `reads_as` there, what people had set (an automation the service paused is still "active").
    state_overrides: tuple[tuple[str, str, Any], ...] = ()
    # (path, value) of a state that blocks something (a spend limit enforcing); None: any value. Entering one
    # is a high `state` notice, leaving it a low one.
    state_alarms: tuple[tuple[str, Any], ...] = ()
    timestamps: tuple[str, ...] = ("created_at", "updated_at")  # seconds since the epoch
    updated_field: str | None = "updated_at"  # when the remote says the object was last edited
    high: tuple[str, ...] = ()  # a change at or under one of these paths is `high`
    created_high: bool = False  # a new object is itself worth a `high` alert (a new key)
    secrets: tuple[str, ...] = ()  # paths whose values are secrets, beyond the keys every kind redacts
    writable: tuple[str, ...] = ()  # fields apply/restore may send; none: read-only
    cleared: Mapping[str, Any] = field(default_factory=dict)  # sent for a writable field the desired body lacks
    azure: bool = False  # Azure OpenAI serves it (under {endpoint}/openai)
    # The organization audit log events whose payload `id` names one of its objects; none: nothing records who.
    audit_types: tuple[str, ...] = ()
    audit_scope: str = ANYWHERE  # IN_PROJECT: an entry must name the object's project (its id repeats)
    summary: str = ""  # one line for the docs and `--help`

    @property
    def read_only(self) -> bool:
        return not self.writable

    def severity(self, change: str, paths: Iterable[str]) -> Severity:
        """`high` or `low` for a drift event of this kind.

        Deleted and reappeared objects are high; a created one is low unless the kind says a
        new object is itself high; a modification is high when a changed path is at, under
        or above one of the kind's `high` paths.
        """
        if change in (EventChange.DELETED, EventChange.REAPPEARED):
            return Severity.HIGH
        if change == EventChange.CREATED:
            return Severity.HIGH if self.created_high else Severity.LOW
        return Severity.HIGH if any(self.is_high_path(p) for p in paths) else Severity.LOW

    def state_severity(self, state: Mapping[str, Any]) -> Severity:
        """`high` when `state` (path: value) holds one of the kind's alarms, else `low`."""
        alarmed = any(path in state and (value is None or state[path] == value) for path, value in self.state_alarms)
        return Severity.HIGH if alarmed else Severity.LOW

    def is_high_path(self, path: str) -> bool:
        """True when a change at `path` touches one of the kind's `high` paths."""
        try:
            parts = parse_path(path)
        except ValueError:
            return True  # a path we cannot read is not one we may call harmless
        return any(_overlaps(parts, parse_path(high)) for high in self.high)

    def object_id(self, raw: dict[str, Any], parent_id: str | None) -> str | None:
        """The record's id for an object as listed (prefixed by its parent's id when it has one)."""
        value = raw.get(self.id_field)
        if not isinstance(value, str) or not value:
            return None
        return f"{parent_id}/{value}" if parent_id is not None else value

    def list_path(self, parent_id: str | None = None) -> str:
        return self.path.format(parent=parent_id) if parent_id is not None else self.path

    def audit_address(self, object_id: str) -> tuple[str, str | None]:
        """(the id an audit log entry names, the project it must name or None) for a recorded object id."""
        if self.listing == SINGLETON_PER_PARENT:
            return object_id, object_id if self.audit_scope == IN_PROJECT else None
        parent, slash, child = object_id.partition("/")
        if self.listing == PER_PARENT and slash:
            return child, parent if self.audit_scope == IN_PROJECT else None
        return object_id, None


def _overlaps(a: tuple, b: tuple) -> bool:
    """True when one path is a prefix of the other (a `*` matches any one key or index)."""
    return all(x == y or WILDCARD in (x, y) for x, y in zip(a, b))
